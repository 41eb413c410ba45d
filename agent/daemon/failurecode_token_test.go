//go:build cgo

package daemon

import (
	"context"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// TestFailedWrapAnswersItsCodeOnARealToken: on a real SoftHSM2 token a
// rewrap of a label the token does not hold answers bad_request, and a
// combination the token cannot wrap (SYMMETRIC_DEFAULT under
// RSAES_OAEP_SHA_256: SoftHSM2 2.6.1 answers CKR_ARGUMENTS_BAD, the README's
// token table) answers unsupported; neither sends a wrap result.
func TestFailedWrapAnswersItsCodeOnARealToken(t *testing.T) {
	a := newAgent(t, nil)
	v, err := protocol.ParseVerifierDER(a.id.PublicDER())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*protocol.WrapRequest)
		want protocol.ErrorCode
	}{
		{"rewrap of a label not on the token", func(r *protocol.WrapRequest) {
			r.Operation, r.HSMLabel = protocol.OpRewrap, "kf/payments/99"
		}, protocol.CodeBadRequest},
		{"combination the token cannot wrap", func(r *protocol.WrapRequest) {
			r.KeySpec, r.WrappingAlgorithm = keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256
		}, protocol.CodeUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.requestStruct(tc.mod)
			a.d.Handle(context.Background(), a.sealRequest(t, a.cp, r))
			env := a.waitFor(t, r.RequestID)
			if env.Action != protocol.ActionError {
				t.Fatalf("daemon answered %s, want an error", env.Action)
			}
			e, err := protocol.OpenError(env, v)
			if err != nil {
				t.Fatal(err)
			}
			if e.Code != tc.want {
				t.Fatalf("error code %s (%s), want %s", e.Code, e.Message, tc.want)
			}
		})
	}
}
