package policy

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

var (
	wkOnce sync.Once
	wk2048 []byte
	wk3072 []byte
)

func wrappingKeys(t testing.TB) ([]byte, []byte) {
	wkOnce.Do(func() {
		for _, x := range []struct {
			bits int
			out  *[]byte
		}{{2048, &wk2048}, {3072, &wk3072}} {
			k, err := rsa.GenerateKey(rand.Reader, x.bits)
			if err != nil {
				panic(err)
			}
			*x.out, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		}
	})
	return wk2048, wk3072
}

type fixture struct {
	cp    *protocol.ECDSASigner
	other *protocol.ECDSASigner
	now   time.Time
	pol   *Policy
	pins  *PinStore
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	cp, _ := protocol.GenerateECDSASigner()
	other, _ := protocol.GenerateECDSASigner()
	v, _ := protocol.NewVerifier(cp.PublicKey())
	pins, err := OpenPins(filepath.Join(t.TempDir(), "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{cp: cp, other: other, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), pins: pins}
	cfg := Config{
		Verifier: v, ClockSkew: time.Minute,
		Accounts: []string{"111122223333"}, Regions: []string{"eu-west-1"}, Groups: []string{"payments"},
		KeySpecs: []keyspec.Spec{keyspec.SymmetricDefault, keyspec.HMAC256}, MinWrappingKeyBits: 3072,
		GlobalRate: Rate{PerMinute: 600, Burst: 100}, GroupRate: Rate{PerMinute: 600, Burst: 100},
		ReplayCacheSize: 1000, Pins: pins, Now: func() time.Time { return f.now },
	}
	if mod != nil {
		mod(&cfg)
	}
	f.pol = New(cfg)
	return f
}

// request returns a valid request, edited by mod.
func (f *fixture) request(t testing.TB, mod func(*protocol.WrapRequest)) protocol.WrapRequest {
	_, w3072 := wrappingKeys(t)
	n, _ := protocol.NewNonce()
	r := protocol.WrapRequest{
		RequestID: "req-1", JobID: "job-1", Nonce: n, Account: "111122223333", Region: "eu-west-1",
		Group: "payments", KeyARN: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		KeySpec: keyspec.SymmetricDefault, Operation: protocol.OpGenerate,
		WrappingAlgorithm: keyspec.RSAESOAEPSHA256, WrappingKeySpec: keyspec.WrapRSA3072, WrappingPublicKey: w3072,
		IssuedAt: f.now.Add(-time.Second), ExpiresAt: f.now.Add(5 * time.Minute),
	}
	if mod != nil {
		mod(&r)
	}
	if r.HSMLabel == "" && r.Operation == protocol.OpGenerate {
		// The control plane plans every generation; a test that does not
		// name one gets the next of this test binary's.
		r.HSMLabel = fmt.Sprintf("kf/%s/%d", r.Group, fixtureGeneration.Add(1))
	}
	return r
}

// fixtureGeneration numbers the generations requestStruct plans.
var fixtureGeneration atomic.Uint64

func (f *fixture) seal(t testing.TB, s protocol.Signer, r protocol.WrapRequest) *protocol.Envelope {
	t.Helper()
	b, err := protocol.Seal(context.Background(), s, "control-plane", protocol.ActionWrapRequest, r)
	if err != nil {
		t.Fatal(err)
	}
	env, err := protocol.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestPolicyRefusesEveryRule(t *testing.T) {
	w2048, _ := wrappingKeys(t)
	tests := []struct {
		name   string
		setup  func(f *fixture) *protocol.Envelope
		reason Reason
		code   protocol.ErrorCode
	}{
		{"signature from another key", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.other, f.request(t, nil))
		}, ReasonSignature, protocol.CodeSignatureInvalid},
		{"expired", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.IssuedAt, r.ExpiresAt = f.now.Add(-10*time.Minute), f.now.Add(-2*time.Minute)
			}))
		}, ReasonExpired, protocol.CodeExpired},
		{"issued in the future beyond skew", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.IssuedAt, r.ExpiresAt = f.now.Add(2*time.Minute), f.now.Add(5*time.Minute)
			}))
		}, ReasonNotYetValid, protocol.CodeExpired},
		{"replayed nonce", func(f *fixture) *protocol.Envelope {
			env := f.seal(t, f.cp, f.request(t, nil))
			if _, err := f.pol.Check(context.Background(), env); err != nil {
				t.Fatalf("first use refused: %v", err)
			}
			return env
		}, ReasonReplay, protocol.CodeReplayed},
		{"account", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.Account, r.KeyARN = "999988887777", "arn:aws:kms:eu-west-1:999988887777:key/k1"
			}))
		}, ReasonAccount, protocol.CodePolicyRefused},
		{"region", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.Region, r.KeyARN = "us-east-1", "arn:aws:kms:us-east-1:111122223333:key/k1"
			}))
		}, ReasonRegion, protocol.CodePolicyRefused},
		{"group", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) { r.Group = "marketing" }))
		}, ReasonGroup, protocol.CodePolicyRefused},
		{"key spec", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.KeySpec, r.WrappingAlgorithm = keyspec.ECCNISTP256, keyspec.RSAAESKeyWrapSHA256
			}))
		}, ReasonKeySpec, protocol.CodePolicyRefused},
		{"wrapping key too small", func(f *fixture) *protocol.Envelope {
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.WrappingKeySpec, r.WrappingPublicKey = keyspec.WrapRSA2048, w2048
			}))
		}, ReasonWrappingKeySize, protocol.CodePolicyRefused},
		{"key pinned to another ARN", func(f *fixture) *protocol.Envelope {
			if _, err := f.pins.Claim("kf/payments/1", "arn:aws:kms:eu-west-1:111122223333:key/other"); err != nil {
				t.Fatal(err)
			}
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) {
				r.Operation, r.HSMLabel = protocol.OpRewrap, "kf/payments/1"
			}))
		}, ReasonKeyPinned, protocol.CodePolicyRefused},
		{"group rate", func(f *fixture) *protocol.Envelope {
			for i := 0; i < 2; i++ {
				if _, err := f.pol.Check(context.Background(), f.seal(t, f.cp, f.request(t, nil))); err != nil {
					t.Fatalf("burst request %d refused: %v", i, err)
				}
			}
			return f.seal(t, f.cp, f.request(t, nil))
		}, ReasonRateGroup, protocol.CodeRateLimited},
		{"global rate", func(f *fixture) *protocol.Envelope {
			f.pol.cfg.Groups = []string{"*"}
			for _, g := range []string{"a", "b", "c"} {
				if _, err := f.pol.Check(context.Background(), f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) { r.Group = g }))); err != nil {
					t.Fatalf("request for group %s refused: %v", g, err)
				}
			}
			return f.seal(t, f.cp, f.request(t, func(r *protocol.WrapRequest) { r.Group = "d" }))
		}, ReasonRateGlobal, protocol.CodeRateLimited},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if tc.reason == ReasonRateGroup {
					c.GroupRate = Rate{PerMinute: 1, Burst: 2}
				}
				if tc.reason == ReasonRateGlobal {
					c.GlobalRate = Rate{PerMinute: 1, Burst: 3}
				}
			})
			env := tc.setup(f)
			req, err := f.pol.Check(context.Background(), env)
			r, ok := AsRefusal(err)
			if !ok {
				t.Fatalf("want *Refusal, got %v", err)
			}
			if r.Reason != tc.reason || r.Code != tc.code {
				t.Fatalf("refused with %s/%s, want %s/%s: %v", r.Reason, r.Code, tc.reason, tc.code, err)
			}
			// A refusal of a request whose signature verified names its
			// request and job (clock refusals too), so the control plane can
			// act on it; a forged one names nothing.
			switch {
			case tc.reason == ReasonSignature && req != nil:
				t.Fatalf("refusal of a forged request names request %q job %q", req.RequestID, req.JobID)
			case tc.reason != ReasonSignature && (req == nil || req.RequestID == "" || req.JobID == ""):
				t.Fatalf("refusal names no request/job: %+v", req)
			}
		})
	}
}

func TestPolicyAcceptsAndRateRecovers(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.GroupRate = Rate{PerMinute: 60, Burst: 1} })
	req, err := f.pol.Check(context.Background(), f.seal(t, f.cp, f.request(t, nil)))
	if err != nil || req.RequestID != "req-1" {
		t.Fatalf("valid request: %v", err)
	}
	if _, err := f.pol.Check(context.Background(), f.seal(t, f.cp, f.request(t, nil))); err == nil {
		t.Fatal("second request inside the same second accepted")
	}
	f.now = f.now.Add(1100 * time.Millisecond)
	if _, err := f.pol.Check(context.Background(), f.seal(t, f.cp, f.request(t, nil))); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}

func TestReplayCacheBoundedAndExpiring(t *testing.T) {
	c := NewReplayCache(2)
	now := time.Unix(1000, 0)
	if c.add("a", now.Add(time.Minute), now) != added || c.add("b", now.Add(2*time.Minute), now) != added {
		t.Fatal("add")
	}
	if c.add("a", now.Add(time.Minute), now) != replayed {
		t.Fatal("replay not detected")
	}
	if c.add("c", now.Add(time.Minute), now) != full {
		t.Fatal("full cache forgot a live nonce")
	}
	later := now.Add(90 * time.Second)
	if c.add("c", later.Add(time.Minute), later) != added || c.Len() != 2 {
		t.Fatalf("expired entry not evicted, len %d", c.Len())
	}
}

func TestKeyPinsSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	s, _ := OpenPins(path)
	if isNew, err := s.Claim("kf/g/1", "arn:a"); err != nil || !isNew {
		t.Fatalf("claim: %v %v", isNew, err)
	}
	if isNew, err := s.Claim("kf/g/1", "arn:a"); err != nil || isNew {
		t.Fatalf("re-claim same ARN: %v %v", isNew, err)
	}
	s2, err := OpenPins(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Claim("kf/g/1", "arn:b"); err == nil {
		t.Fatal("pin lost across restart")
	} else if r, ok := AsRefusal(err); !ok || r.Reason != ReasonKeyPinned {
		t.Fatalf("want key_pinned refusal, got %v", err)
	}
}
