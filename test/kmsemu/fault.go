package kmsemu

import "time"

// FaultAction tells the emulator how to misbehave for one request. The zero
// value (or a nil *FaultAction) means "behave normally".
type FaultAction struct {
	// Delay is slept before the request is handled (and before any error).
	Delay time.Duration
	// ErrorType, when set, answers with this KMS error type (e.g.
	// "KMSInternalException", "ThrottlingException") without applying the request.
	ErrorType string
	// Message goes with ErrorType.
	Message string
	// Status is the HTTP status for ErrorType; 0 means 400 (500 for
	// KMSInternalException and DependencyTimeoutException).
	Status int
	// DropResponse applies the request, then aborts the connection without a
	// response: the caller cannot tell whether it happened.
	DropResponse bool
}

// FaultFunc decides per request whether to inject a fault. op is the KMS
// operation name ("ImportKeyMaterial"), req the raw JSON body. It is called
// for every KMS request (not for admin endpoints) and must be safe for
// concurrent use.
type FaultFunc func(op string, req []byte) *FaultAction

func (a *FaultAction) status() int {
	if a.Status != 0 {
		return a.Status
	}
	switch a.ErrorType {
	case "KMSInternalException", "DependencyTimeoutException":
		return 500
	}
	return 400
}
