//go:build cgo

package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/policy"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// waitResult drains the sink until the message for requestID arrives.
func (a *agent) waitFor(t *testing.T, requestID string) *protocol.Envelope {
	t.Helper()
	for {
		env := a.out.next(t)
		var id string
		switch env.Action {
		case protocol.ActionWrapResult:
			v, _ := protocol.ParseVerifierDER(a.id.PublicDER())
			r, err := protocol.OpenWrapResult(env, v, time.Now(), time.Minute)
			if err != nil {
				t.Fatalf("wrap_result does not open: %v", err)
			}
			id = r.RequestID
		case protocol.ActionError:
			v, _ := protocol.ParseVerifierDER(a.id.PublicDER())
			e, err := protocol.OpenError(env, v)
			if err != nil {
				t.Fatalf("error message does not open: %v", err)
			}
			id = e.RequestID
		}
		if id == requestID {
			return env
		}
	}
}

// accept sends a valid request and waits for its result.
func (a *agent) accept(t *testing.T, mod func(*protocol.WrapRequest)) {
	t.Helper()
	r := a.requestStruct(mod)
	a.d.Handle(context.Background(), a.sealRequest(t, a.cp, r))
	if env := a.waitFor(t, r.RequestID); env.Action != protocol.ActionWrapResult {
		e, _ := protocol.OpenError(env, nil)
		t.Fatalf("setup request refused: %+v", e)
	}
}

// TestPolicyRefusalCreatesAndWrapsNothing is security invariant 2 end to
// end against a real SoftHSM token: every policy rule refuses a violating
// request with a typed, signed error message, writes a refusal record to the
// audit log, and creates or wraps no HSM key (token object count and
// Generate/Wrap calls unchanged).
func TestInvariantWrapOnlySignedUnexpiredUnreplayedAllowedRequests(t *testing.T) {
	other, _ := protocol.GenerateECDSASigner()
	const otherARN = "arn:aws:kms:eu-west-1:111122223333:key/99999999-12ab-34cd-56ef-1234567890ab"
	tests := []struct {
		name   string
		pol    func(*policy.Config)
		setup  func(t *testing.T, a *agent) []byte
		reason policy.Reason
		code   protocol.ErrorCode
	}{
		{"signature", nil, func(t *testing.T, a *agent) []byte {
			return a.sealRequest(t, other, a.requestStruct(nil))
		}, policy.ReasonSignature, protocol.CodeSignatureInvalid},
		{"expired", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) {
				r.IssuedAt, r.ExpiresAt = time.Now().UTC().Add(-10*time.Minute), time.Now().UTC().Add(-2*time.Minute)
			})
		}, policy.ReasonExpired, protocol.CodeExpired},
		{"not yet valid", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) {
				r.IssuedAt, r.ExpiresAt = time.Now().UTC().Add(3*time.Minute), time.Now().UTC().Add(6*time.Minute)
			})
		}, policy.ReasonNotYetValid, protocol.CodeExpired},
		{"replay", nil, func(t *testing.T, a *agent) []byte {
			r := a.requestStruct(nil)
			b := a.sealRequest(t, a.cp, r)
			a.d.Handle(context.Background(), b)
			a.waitFor(t, r.RequestID)
			return b
		}, policy.ReasonReplay, protocol.CodeReplayed},
		{"account", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) {
				r.Account, r.KeyARN = "444455556666", "arn:aws:kms:eu-west-1:444455556666:key/k1"
			})
		}, policy.ReasonAccount, protocol.CodePolicyRefused},
		{"region", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) {
				r.Region, r.KeyARN = "us-east-1", "arn:aws:kms:us-east-1:111122223333:key/k1"
			})
		}, policy.ReasonRegion, protocol.CodePolicyRefused},
		{"group", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) { r.Group = "marketing" })
		}, policy.ReasonGroup, protocol.CodePolicyRefused},
		{"key spec", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) {
				r.KeySpec, r.WrappingAlgorithm = keyspec.RSA2048, keyspec.RSAAESKeyWrapSHA1
			})
		}, policy.ReasonKeySpec, protocol.CodePolicyRefused},
		{"wrapping key size", nil, func(t *testing.T, a *agent) []byte {
			return a.request(t, func(r *protocol.WrapRequest) {
				r.WrappingKeySpec, r.WrappingPublicKey = keyspec.WrapRSA2048, wk2048
			})
		}, policy.ReasonWrappingKeySize, protocol.CodePolicyRefused},
		{"key pinning", nil, func(t *testing.T, a *agent) []byte {
			a.accept(t, func(r *protocol.WrapRequest) { r.HSMLabel = "kf/payments/7" })
			return a.request(t, func(r *protocol.WrapRequest) {
				r.Operation, r.HSMLabel, r.KeyARN = protocol.OpRewrap, "kf/payments/7", otherARN
			})
		}, policy.ReasonKeyPinned, protocol.CodePolicyRefused},
		{"group rate", func(c *policy.Config) { c.GroupRate = policy.Rate{PerMinute: 0.001, Burst: 1} }, func(t *testing.T, a *agent) []byte {
			a.accept(t, nil)
			return a.request(t, nil)
		}, policy.ReasonRateGroup, protocol.CodeRateLimited},
		{"global rate", func(c *policy.Config) { c.GlobalRate = policy.Rate{PerMinute: 0.001, Burst: 1} }, func(t *testing.T, a *agent) []byte {
			a.accept(t, nil)
			return a.request(t, func(r *protocol.WrapRequest) { r.Group = "tokens" })
		}, policy.ReasonRateGlobal, protocol.CodeRateLimited},
		{"malformed message", nil, func(t *testing.T, a *agent) []byte {
			return []byte(`{"v":1,"action":"wrap_request","payload":"!!!","sig":"AA==","signer":"x"}`)
		}, policy.ReasonBadRequest, protocol.CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t, tc.pol)
			msg := tc.setup(t, a)
			objs := a.objects(t)
			gens, wraps := a.hsm.generates.Load(), a.hsm.wraps.Load()
			recs := len(a.auditRecords(t))

			a.d.Handle(context.Background(), msg)
			env := a.out.next(t)
			if env.Action != protocol.ActionError {
				t.Fatalf("daemon answered %s, want error", env.Action)
			}
			v, _ := protocol.ParseVerifierDER(a.id.PublicDER())
			e, err := protocol.OpenError(env, v)
			if err != nil {
				t.Fatalf("error message not signed by the agent identity: %v", err)
			}
			if e.Code != tc.code {
				t.Fatalf("error code %s, want %s (%s)", e.Code, tc.code, e.Message)
			}
			if err := a.d.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := a.objects(t); got != objs {
				t.Fatalf("HSM objects %d -> %d: a refused request changed the token", objs, got)
			}
			if a.hsm.generates.Load() != gens || a.hsm.wraps.Load() != wraps {
				t.Fatal("a refused request reached Generate or Wrap")
			}
			all := a.auditRecords(t)
			if len(all) != recs+1 {
				t.Fatalf("audit records %d -> %d, want exactly one refusal record", recs, len(all))
			}
			last := all[len(all)-1]
			if last.Event != audit.EventRefusal || last.Decision != "refused" || last.Reason != string(tc.reason) {
				t.Fatalf("audit record %+v, want refusal %s", last, tc.reason)
			}
		})
	}
}
