package engine_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/logsink"
)

// TestInvariant3ImportsOnlyBlobsSignedByRegisteredAgent: a wrap_result with
// a bad or missing signature, signed by an unregistered key, for an unknown
// job, or replayed, is rejected, logged, and changes nothing.
func TestInvariant3ImportsOnlyBlobsSignedByRegisteredAgent(t *testing.T) {
	g := uniq("inv3")
	h := newHarness(t, symGroup(g, "alias-swap"))
	j, env, res := h.answerFirst(g)
	rogue, err := protocol.GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	seal := func(s protocol.Signer, r protocol.WrapResult) *protocol.Envelope {
		b, err := protocol.Seal(h.ctx, s, "agent-1", protocol.ActionWrapResult, r)
		if err != nil {
			t.Fatal(err)
		}
		e, err := protocol.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tampered := *env
	tampered.Sig = append([]byte(nil), env.Sig...)
	tampered.Sig[len(tampered.Sig)-1] ^= 0xff
	unsigned := *env
	unsigned.Sig = nil
	otherJob := res
	otherJob.JobID = "job-000000000000000000000000"
	otherPayload := *env
	otherPayload.Payload = []byte(strings.Replace(string(env.Payload), res.KeyARN, res.KeyARN+"x", 1))

	cases := []struct {
		name string
		env  *protocol.Envelope
		conn string
	}{
		{"bad signature", &tampered, "conn-1"},
		{"missing signature", &unsigned, "conn-1"},
		{"signature of an unregistered key", seal(rogue, res), "conn-1"},
		{"payload changed after signing", &otherPayload, "conn-1"},
		{"unknown job", seal(h.peer.Identity, otherJob), "conn-1"},
		{"unknown connection", env, "conn-unknown"},
	}
	before := h.job(j.ID)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.eng.HandleWrapResult(h.ctx, tc.conn, tc.env)
			if !errors.Is(err, engine.ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
			after := h.job(j.ID)
			if after.State != store.StateRequested || after.Version != before.Version {
				t.Fatalf("job changed: %s v%d -> %s v%d", before.State, before.Version, after.State, after.Version)
			}
			if !strings.Contains(h.logs.String(), "wrap_result rejected") {
				t.Fatal("rejection not logged")
			}
		})
	}
	// The genuine result still completes the job; replaying it changes nothing.
	if _, err := h.eng.HandleWrapResult(h.ctx, "conn-1", env); err != nil {
		t.Fatal(err)
	}
	done := h.job(j.ID)
	h.requireState(done, store.StateSucceeded)
	if _, err := h.eng.HandleWrapResult(h.ctx, "conn-1", env); !errors.Is(err, engine.ErrRejected) {
		t.Fatalf("replay: %v, want ErrRejected", err)
	}
	if again := h.job(j.ID); again.Version != done.Version || again.State != store.StateSucceeded {
		t.Fatalf("replay changed the job: v%d -> v%d", done.Version, again.Version)
	}
	if strings.Contains(h.logs.String(), base64.StdEncoding.EncodeToString(res.WrappedMaterial)) {
		t.Fatal("wrapped material in the logs")
	}
}

// TestInvariant3HelloFromUnregisteredIdentityRefused: a connection whose
// hello is signed by a key other than the registered one never gets
// wrap_requests.
func TestInvariant3HelloFromUnregisteredIdentityRefused(t *testing.T) {
	g := uniq("hello")
	h := newHarness(t, symGroup(g, "alias-swap"))
	rogue, _ := protocol.GenerateECDSASigner()
	if err := h.st.PutConnection(h.ctx, &store.Connection{ID: "rogue", AgentID: "agent-1", Pool: "p1"}); err != nil {
		t.Fatal(err)
	}
	b, err := protocol.Seal(h.ctx, rogue, "agent-1", protocol.ActionHello, protocol.Hello{
		AgentID: "agent-1", Version: "x", HSMPool: "p1", IdentityPublicKey: rogue.PublicKeyDER(), SentAt: emu.Now(),
		Capabilities: []protocol.Capability{{KeySpec: "SYMMETRIC_DEFAULT", Algorithms: []keyspecAlg{"RSAES_OAEP_SHA_1"}, WrappingKeySpecs: []keyspecWKS{"RSA_4096"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := protocol.Decode(b)
	if err := h.eng.HandleHello(h.ctx, "rogue", env); !errors.Is(err, engine.ErrRejected) {
		t.Fatalf("rogue hello: %v, want ErrRejected", err)
	}
	c, _ := h.st.GetConnection(h.ctx, "rogue")
	if c.Hello {
		t.Fatal("rogue connection marked as verified")
	}
}

// TestAgentRefusalFailsJobWithReason: a signed error from the agent the
// request went to fails the job with the agent's code; the new key is
// cleaned up. A refusal naming another request changes nothing.
func TestAgentRefusalFailsJobWithReason(t *testing.T) {
	g := uniq("refuse")
	h := newHarness(t, symGroup(g, "alias-swap"))
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
	if err != nil {
		t.Fatal(err)
	}
	h.loop.Take()
	j = h.job(j.ID)
	seal := func(reqID string) *protocol.Envelope {
		b, err := protocol.Seal(h.ctx, h.peer.Identity, "agent-1", protocol.ActionError, protocol.Error{
			RequestID: reqID, JobID: j.ID, AgentID: "agent-1", Code: protocol.CodePolicyRefused, Message: "group not allowed here",
		})
		if err != nil {
			t.Fatal(err)
		}
		env, _ := protocol.Decode(b)
		return env
	}
	if err := h.eng.HandleAgentError(h.ctx, "conn-1", seal("req-other")); !errors.Is(err, engine.ErrRejected) {
		t.Fatalf("refusal of another request: %v", err)
	}
	h.requireState(h.job(j.ID), store.StateRequested)
	if err := h.eng.HandleAgentError(h.ctx, "conn-1", seal(j.RequestID)); err != nil {
		t.Fatal(err)
	}
	f := h.job(j.ID)
	h.requireState(f, store.StateFailed)
	if !strings.Contains(f.Reason, "policy_refused") {
		t.Fatalf("reason %q", f.Reason)
	}
}

// TestMetricsEmitted: a successful rotation writes EMF records for
// RotationsSucceeded and RotationLatency.
func TestMetricsEmitted(t *testing.T) {
	g := uniq("emf")
	h := newHarness(t, symGroup(g, "alias-swap"))
	var buf logsink.Buffer
	h.eng.Metrics = &metrics.Emitter{W: &buf}
	h.requireState(h.rotate(g, "t"), store.StateSucceeded)
	for _, m := range []string{metrics.RotationsSucceeded, metrics.RotationLatency} {
		if !strings.Contains(buf.String(), `"`+m+`"`) || !strings.Contains(buf.String(), `"Namespace":"keyferry"`) {
			t.Fatalf("no EMF record for %s in %s", m, buf.String())
		}
	}
}
