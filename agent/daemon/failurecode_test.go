package daemon

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// TestWrapFailureCodes: a failed wrap answers the code the control plane
// acts on (unsupported: another agent or combination; bad_request: the
// request names a key this token lacks; hsm_error: the token failed), read
// from the HSM layer's typed errors through the daemon's %w wrapping.
// TestFailedWrapAnswersItsCodeOnARealToken runs the first two end to end.
func TestWrapFailureCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want protocol.ErrorCode
	}{
		{"token cannot wrap", fmt.Errorf("wrap %q: %w", "kf/payments/1",
			&hsm.UnsupportedError{Token: "t", Spec: "SYMMETRIC_DEFAULT", Algorithm: "RSAES_OAEP_SHA_256", Mechanism: "CKM_RSA_PKCS_OAEP"}), protocol.CodeUnsupported},
		{"spec not importable", fmt.Errorf("generate: %w", keyspec.ErrUnknownSpec), protocol.CodeUnsupported},
		{"key not on the token", fmt.Errorf("find %q: %w", "kf/payments/9", &hsm.KeyNotFoundError{Label: "kf/payments/9", Token: "t"}), protocol.CodeBadRequest},
		{"device lost", fmt.Errorf("wrap %q: %w", "kf/payments/1", hsm.ErrDeviceLost), protocol.CodeHSMError},
		{"key exists is not a request error", &hsm.KeyExistsError{Label: "kf/payments/1", Token: "t"}, protocol.CodeHSMError},
		{"anything else", errors.New("public key of \"kf/payments/1\": boom"), protocol.CodeHSMError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failureCode(tc.err); got != tc.want {
				t.Fatalf("failureCode(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}
