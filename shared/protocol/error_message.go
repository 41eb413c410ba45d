package protocol

import (
	"fmt"
	"unicode/utf8"
)

// MaxErrorMessageBytes bounds Error.Message.
const MaxErrorMessageBytes = 2048

// ErrorCode classifies an Error message.
type ErrorCode string

// Error codes.
const (
	CodeSignatureInvalid ErrorCode = "signature_invalid"
	CodeExpired          ErrorCode = "expired"
	CodeReplayed         ErrorCode = "replayed"
	CodePolicyRefused    ErrorCode = "policy_refused"
	CodeUnsupported      ErrorCode = "unsupported"
	CodeHSMError         ErrorCode = "hsm_error"
	CodeBadRequest       ErrorCode = "bad_request"
	CodeRateLimited      ErrorCode = "rate_limited"
	CodeInternal         ErrorCode = "internal"
)

// Valid reports whether c is a known code.
func (c ErrorCode) Valid() bool {
	switch c {
	case CodeSignatureInvalid, CodeExpired, CodeReplayed, CodePolicyRefused, CodeUnsupported,
		CodeHSMError, CodeBadRequest, CodeRateLimited, CodeInternal:
		return true
	}
	return false
}

// Error reports a refused or failed request (RequestID set) or a
// connection-level problem (RequestID empty). Either side may send it,
// signed by its own key.
type Error struct {
	RequestID string    `json:"request_id,omitempty"`
	JobID     string    `json:"job_id,omitempty"`
	AgentID   string    `json:"agent_id,omitempty"`
	Code      ErrorCode `json:"code"`
	Message   string    `json:"message"`
}

// Action implements message.
func (Error) Action() Action { return ActionError }

func (m Error) normalized() any { return m }

func (m Error) validate() error {
	for _, f := range []struct{ name, val string }{
		{"request_id", m.RequestID}, {"job_id", m.JobID}, {"agent_id", m.AgentID},
	} {
		if f.val == "" {
			continue
		}
		if err := checkText(f.name, f.val); err != nil {
			return err
		}
	}
	if m.Code == "" {
		return missing("code")
	}
	if !m.Code.Valid() {
		return invalid("code", fmt.Sprintf("unknown error code %q", string(m.Code)))
	}
	if m.Message == "" {
		return missing("message")
	}
	if len(m.Message) > MaxErrorMessageBytes {
		return invalid("message", fmt.Sprintf("%d bytes, limit %d", len(m.Message), MaxErrorMessageBytes))
	}
	if !utf8.ValidString(m.Message) {
		return invalid("message", "not valid UTF-8")
	}
	return nil
}

// OpenError verifies env's signature with v (the sender's key) first, then
// decodes and checks the error message strictly.
func OpenError(env *Envelope, v *Verifier) (*Error, error) {
	var m Error
	if err := open(env, v, ActionError, &m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("error: %w", err)
	}
	return &m, nil
}
