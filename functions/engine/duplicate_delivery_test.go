package engine_test

import (
	"testing"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
)

// TestReplayRefusalOfDuplicateDeliveryKeepsJob: API Gateway may deliver a
// wrap_request twice; the agent accepts the first copy and refuses the
// second as replayed. That refusal must not fail the job: the original's
// result follows and completes it (found by the soak: "refused request
// ...: replayed: nonce ... was already used" failed a good rotation).
func TestReplayRefusalOfDuplicateDeliveryKeepsJob(t *testing.T) {
	g := uniq("dupdel")
	h := newHarness(t, symGroup(g, "alias-swap"))
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
	if err != nil {
		t.Fatal(err)
	}
	j = h.job(j.ID)
	h.requireState(j, store.StateRequested)
	b, err := protocol.Seal(h.ctx, h.peer.Identity, "agent-1", protocol.ActionError, protocol.Error{
		RequestID: j.RequestID, JobID: j.ID, AgentID: "agent-1", Code: protocol.CodeReplayed, Message: "nonce already used",
	})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := protocol.Decode(b)
	if err := h.eng.HandleAgentError(h.ctx, "conn-1", env); err != nil {
		t.Fatalf("HandleAgentError: %v", err)
	}
	h.requireState(h.job(j.ID), store.StateRequested)
	h.deliver() // the original delivery's result
	h.requireState(h.job(j.ID), store.StateSucceeded)
}
