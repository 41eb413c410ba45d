package protocol

import (
	"errors"
	"fmt"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// Sentinel errors. Every error returned by Decode, Seal and the Open*
// functions wraps one of these or is a *MissingFieldError / *InvalidFieldError,
// so callers branch with errors.Is / errors.As.
var (
	// ErrTooLarge: the envelope exceeds MaxMessageBytes.
	ErrTooLarge = errors.New("protocol: message too large")
	// ErrMalformed: not valid JSON, bad base64, trailing data, unknown or
	// duplicate fields, or a payload that does not decode into its message.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrVersion: the envelope version is not Version.
	ErrVersion = errors.New("protocol: unsupported protocol version")
	// ErrUnknownAction: the envelope action is not one of the known actions.
	ErrUnknownAction = errors.New("protocol: unknown action")
	// ErrWrongAction: an Open* function was given an envelope of another action.
	ErrWrongAction = errors.New("protocol: envelope carries another action")
	// ErrBadSignature: the signature is missing, not DER, or does not verify
	// under the given key for this action and payload.
	ErrBadSignature = errors.New("protocol: bad signature")
	// ErrExpired: the message is past its validity (beyond the allowed skew).
	ErrExpired = errors.New("protocol: message expired")
	// ErrNotYetValid: the message was issued in the future (beyond the allowed skew).
	ErrNotYetValid = errors.New("protocol: message not yet valid")
)

// MissingFieldError reports a required field that is absent or empty. Field
// is the JSON name (e.g. "wrapping_public_key", "capabilities[1].key_spec";
// envelope fields are "v", "action", "payload", "sig", "signer").
type MissingFieldError struct {
	Field string
}

func (e *MissingFieldError) Error() string {
	return fmt.Sprintf("protocol: missing required field %q", e.Field)
}

// InvalidFieldError reports a field that is present but unacceptable. Err, if
// set, is the underlying cause (e.g. a *keyspec.IllegalCombinationError or
// keyspec.ErrUnknownSpec) and is reachable with errors.Is / errors.As.
type InvalidFieldError struct {
	Field  string
	Reason string
	Err    error
}

func (e *InvalidFieldError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("protocol: invalid field %q: %s: %v", e.Field, e.Reason, e.Err)
	}
	return fmt.Sprintf("protocol: invalid field %q: %s", e.Field, e.Reason)
}

func (e *InvalidFieldError) Unwrap() error { return e.Err }

func missing(field string) error { return &MissingFieldError{Field: field} }

func invalid(field, reason string) error { return &InvalidFieldError{Field: field, Reason: reason} }

func invalidErr(field, reason string, err error) error {
	return &InvalidFieldError{Field: field, Reason: reason, Err: err}
}

// CodeFor maps an error from this package to the ErrorCode a peer should be
// told in an Error message. Unknown errors map to CodeInternal.
func CodeFor(err error) ErrorCode {
	var ice *keyspec.IllegalCombinationError
	var mf *MissingFieldError
	var inv *InvalidFieldError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrBadSignature):
		return CodeSignatureInvalid
	case errors.Is(err, ErrExpired), errors.Is(err, ErrNotYetValid):
		return CodeExpired
	case errors.As(err, &ice), errors.Is(err, keyspec.ErrUnknownSpec), errors.Is(err, ErrVersion):
		return CodeUnsupported
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownAction),
		errors.Is(err, ErrWrongAction), errors.As(err, &mf), errors.As(err, &inv):
		return CodeBadRequest
	}
	return CodeInternal
}
