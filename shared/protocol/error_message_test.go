package protocol

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func TestOpenErrorRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Error)
		want errWant
	}{
		{"missing code", func(m *Error) { m.Code = "" }, errWant{missing: "code"}},
		{"missing message", func(m *Error) { m.Message = "" }, errWant{missing: "message"}},
		{"unknown code", func(m *Error) { m.Code = "teapot" }, errWant{invalid: "code"}},
		{"oversized message", func(m *Error) { m.Message = strings.Repeat("x", MaxErrorMessageBytes+1) }, errWant{invalid: "message"}},
		{"control char in request_id", func(m *Error) { m.RequestID = "a\x00b" }, errWant{invalid: "request_id"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validError()
			tc.edit(&m)
			got, err := OpenError(mustDecode(t, sealRaw(t, agentSigner(t), agentID, ActionError, mustJSON(t, m))), verifierOf(t, agentSigner(t)))
			if got != nil {
				t.Fatalf("opened %+v", got)
			}
			checkErr(t, err, tc.want)
		})
	}
	// Errors are signed too.
	_, err := OpenError(mustDecode(t, mustSeal(t, rogueSigner(t), agentID, ActionError, validError())), verifierOf(t, agentSigner(t)))
	checkErr(t, err, errWant{is: []error{ErrBadSignature}})
	_, err = OpenError(mustDecode(t, mustSeal(t, agentSigner(t), agentID, ActionError, validError())), nil)
	checkErr(t, err, errWant{is: []error{ErrBadSignature}})
}

func TestCodeFor(t *testing.T) {
	tests := []struct {
		err  error
		want ErrorCode
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", ErrBadSignature), CodeSignatureInvalid},
		{fmt.Errorf("x: %w", ErrExpired), CodeExpired},
		{fmt.Errorf("x: %w", ErrNotYetValid), CodeExpired},
		{fmt.Errorf("x: %w", ErrVersion), CodeUnsupported},
		{invalidErr("wrapping_algorithm", "illegal", &keyspec.IllegalCombinationError{}), CodeUnsupported},
		{invalidErr("key_spec", "unknown", keyspec.ErrUnknownSpec), CodeUnsupported},
		{fmt.Errorf("x: %w", ErrTooLarge), CodeBadRequest},
		{fmt.Errorf("x: %w", ErrMalformed), CodeBadRequest},
		{fmt.Errorf("x: %w", ErrUnknownAction), CodeBadRequest},
		{fmt.Errorf("x: %w", ErrWrongAction), CodeBadRequest},
		{missing("job_id"), CodeBadRequest},
		{invalid("nonce", "short"), CodeBadRequest},
		{errors.New("pkcs#11 C_WrapKey: CKR_DEVICE_ERROR"), CodeInternal},
	}
	for _, tc := range tests {
		if got := CodeFor(tc.err); got != tc.want {
			t.Errorf("CodeFor(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if tc.want != "" && !tc.want.Valid() {
			t.Errorf("%q not Valid", tc.want)
		}
	}
}
