//go:build cgo

package daemon

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/policy"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// poolPeer is a second daemon on a's token (another agent of the same
// pool: its own identity key, pin file and audit log, the same key store).
func poolPeer(t *testing.T, a *agent) (*Daemon, *sink) {
	t.Helper()
	ctx := context.Background()
	id, err := a.h.Identity(ctx, "kf-agent-identity-2")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pins, err := policy.OpenPins(filepath.Join(dir, "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := protocol.NewVerifier(a.cp.PublicKey())
	pol := policy.New(policy.Config{
		Verifier: v, ClockSkew: time.Minute, Accounts: []string{"111122223333"}, Regions: []string{"eu-west-1"},
		Groups: []string{"payments"}, KeySpecs: []keyspec.Spec{keyspec.SymmetricDefault, keyspec.HMAC256},
		MinWrappingKeyBits: 3072, GlobalRate: policy.Rate{PerMinute: 600, Burst: 100}, GroupRate: policy.Rate{PerMinute: 600, Burst: 100},
		ReplayCacheSize: 1000, Pins: pins,
	})
	log, err := audit.Open(filepath.Join(dir, "audit.jsonl"), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	d, err := New(Config{AgentID: "agent-test-2", HSMPool: "softhsm", PoolSize: 2, HSM: a.hsm, Identity: id, Policy: pol, Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	out := newSink()
	d.SetSender(out)
	return d, out
}

func unwrapOAEP1(t *testing.T, env *protocol.Envelope) []byte {
	t.Helper()
	if env.Action != protocol.ActionWrapResult {
		t.Fatalf("got %s: %s", env.Action, env.Payload)
	}
	var res protocol.WrapResult
	if err := json.Unmarshal(env.Payload, &res); err != nil {
		t.Fatal(err)
	}
	k, err := rsa.DecryptOAEP(sha1.New(), nil, wk3072Priv, res.WrappedMaterial, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestGenerateHandedOverWrapsTheKeyAnotherAgentMade: agent A generated the
// generation's key and its result was lost (A died); the request handed to
// agent B of the same pool (same token, B's own pins) names the same label:
// B wraps A's key (same material) and creates no second key. A key of
// that label with another spec is refused, not replaced.
func TestGenerateHandedOverWrapsTheKeyAnotherAgentMade(t *testing.T) {
	a := newAgent(t, nil)
	b, bout := poolPeer(t, a)
	label := "kf/payments/7"
	a.d.Handle(context.Background(), a.request(t, func(r *protocol.WrapRequest) { r.HSMLabel = label }))
	fromA := unwrapOAEP1(t, a.out.next(t))
	objects := a.objects(t)

	b.Handle(context.Background(), a.request(t, func(r *protocol.WrapRequest) { r.HSMLabel = label }))
	fromB := unwrapOAEP1(t, bout.next(t))
	if !bytes.Equal(fromA, fromB) {
		t.Fatal("agent B wrapped different material than agent A generated for the same label")
	}
	if n := a.objects(t); n != objects {
		t.Fatalf("token holds %d objects after B's generate, %d before: a second key was made", n, objects)
	}

	b.Handle(context.Background(), a.request(t, func(r *protocol.WrapRequest) {
		r.HSMLabel, r.KeySpec = label, keyspec.HMAC256
		r.KeyARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ac"
	}))
	if env := bout.next(t); env.Action != protocol.ActionError {
		t.Fatalf("generate of an existing label with another spec: %s, want an error", env.Action)
	}
	if n := a.objects(t); n != objects {
		t.Fatalf("token holds %d objects, want %d", n, objects)
	}
}
