package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/agentpeer"
)

// helloOn records connection id of agent/pool and hands it the hello m
// sealed by key as signer; it returns HandleHello's error.
func (h *harness) helloOn(id, agent, pool string, key *hsm.IdentityKey, signer string, m protocol.Hello) error {
	h.t.Helper()
	now := emu.Now()
	if err := h.st.PutConnection(h.ctx, &store.Connection{ID: id, AgentID: agent, Pool: pool, ConnectedAt: now, LastSeen: now}); err != nil {
		h.t.Fatal(err)
	}
	b, err := protocol.Seal(h.ctx, key, signer, protocol.ActionHello, m)
	if err != nil {
		h.t.Fatal(err)
	}
	env, err := protocol.Decode(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.eng.HandleHello(h.ctx, id, env)
}

// TestHelloRefusedForAnotherPoolOrAnotherAgentsKey: a hello for a pool the
// agent is not listed in, or carrying or signed by another registered
// agent's identity key, is refused at hello (ErrRejected, a message
// naming the problem) and the connection stays unverified: no
// capabilities, no wrap_request, and the agent's own connection untouched.
func TestHelloRefusedForAnotherPoolOrAnotherAgentsKey(t *testing.T) {
	g := uniq("badhello")
	h := newHarness(t, symGroups(g))
	p2 := withSecondAgent(t, h) // agent-2 of pool p1, conn-2
	base, err := h.peer.HelloMessage(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, agent, pool, signer string
		key                       *hsm.IdentityKey
		edit                      func(*protocol.Hello)
		want                      string
	}{
		{"connected for a pool it is not listed in", "agent-1", "p9", "agent-1", h.peer.Identity,
			func(m *protocol.Hello) { m.HSMPool = "p9" }, "not registered"},
		{"hello names a pool it is not listed in", "agent-1", "p1", "agent-1", h.peer.Identity,
			func(m *protocol.Hello) { m.HSMPool = "p9" }, `pool "p9"`},
		{"signed by another agent as that agent", "agent-1", "p1", "agent-2", p2.Identity,
			func(m *protocol.Hello) { m.AgentID, m.IdentityPublicKey = "agent-2", p2.Identity.PublicDER() }, `signed by "agent-2" on connection of agent "agent-1"`},
		{"signed with another agent's key", "agent-1", "p1", "agent-1", p2.Identity,
			func(m *protocol.Hello) { m.IdentityPublicKey = p2.Identity.PublicDER() }, "signature"},
		{"carries another agent's identity key", "agent-1", "p1", "agent-1", h.peer.Identity,
			func(m *protocol.Hello) { m.IdentityPublicKey = p2.Identity.PublicDER() }, "not the key registered for this agent"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			m.SentAt = emu.Now()
			tc.edit(&m)
			id := "bad-" + string(rune('a'+i))
			err := h.helloOn(id, tc.agent, tc.pool, tc.key, tc.signer, m)
			if !errors.Is(err, engine.ErrRejected) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("hello: %v, want ErrRejected naming %q", err, tc.want)
			}
			c, err := h.st.GetConnection(h.ctx, id)
			if err != nil || c.Hello || len(c.Capabilities) != 0 {
				t.Fatalf("refused connection changed: %+v %v", c, err)
			}
			for _, own := range []string{"conn-1", "conn-2"} {
				if c, err := h.st.GetConnection(h.ctx, own); err != nil || !c.Hello || !c.GoneAt.IsZero() {
					t.Fatalf("agent connection %s after the refused hello: %+v %v", own, c, err)
				}
			}
			if len(h.loop.Deleted) != 0 {
				t.Fatalf("a refused hello closed %v", h.loop.Deleted)
			}
			if err := h.st.DeleteConnection(h.ctx, id); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The refused connections never get a request; the agents do.
	if _, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t")); err != nil {
		t.Fatal(err)
	}
	msgs := h.loop.Take()
	if len(msgs) != 1 || (msgs[0].ConnectionID != "conn-1" && msgs[0].ConnectionID != "conn-2") {
		t.Fatalf("wrap_requests posted %+v, want one to conn-1 or conn-2", msgs)
	}
}

// TestNewerVerifiedHelloClosesTheOlderConnection: two connections claim
// agent-1. A newer one whose hello does not verify changes nothing; a
// newer one whose hello verifies wins: the older ones are marked gone and
// closed (DeleteConnection), its outstanding request goes to the new connection
// (handed over, or kept when the hello lists it as pending), the old
// request's late result is refused, and the job SUCCEEDS once.
func TestNewerVerifiedHelloClosesTheOlderConnection(t *testing.T) {
	for _, pending := range []bool{false, true} {
		name := "handed over"
		if pending {
			name = "pending, kept"
		}
		t.Run(name, func(t *testing.T) {
			g := uniq("supersede")
			h := newHarness(t, symGroups(g))
			j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
			if err != nil {
				t.Fatal(err)
			}
			first := h.loop.Take()
			if len(first) != 1 || first[0].ConnectionID != "conn-1" {
				t.Fatalf("posted %+v, want one request to conn-1", first)
			}
			reqID := h.job(j.ID).RequestID

			// A stranger claiming agent-1 on a newer connection.
			rogue, err := agentpeer.New(h.ctx, theHSM, "rogue-1", "p1", h.peer.ControlPlane)
			if err != nil {
				t.Fatal(err)
			}
			m, err := h.peer.HelloMessage(h.ctx)
			if err != nil {
				t.Fatal(err)
			}
			m.IdentityPublicKey = rogue.Identity.PublicDER()
			if err := h.helloOn("conn-rogue", "agent-1", "p1", rogue.Identity, "agent-1", m); !errors.Is(err, engine.ErrRejected) {
				t.Fatalf("rogue hello: %v", err)
			}
			if c, err := h.st.GetConnection(h.ctx, "conn-1"); err != nil || !c.GoneAt.IsZero() || len(h.loop.Deleted) != 0 {
				t.Fatalf("unverified newer hello touched conn-1: %+v %v, deleted %v", c, err, h.loop.Deleted)
			}
			if got := h.job(j.ID); got.State != store.StateRequested || got.ConnectionID != "conn-1" {
				t.Fatalf("job after the rogue hello: %s at %s", got.State, got.ConnectionID)
			}

			// The agent itself on a newer connection.
			m, err = h.peer.HelloMessage(h.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pending {
				m.Pending = []string{reqID}
			}
			if err := h.helloOn("conn-new", "agent-1", "p1", h.peer.Identity, "agent-1", m); err != nil {
				t.Fatalf("genuine newer hello: %v", err)
			}
			h.conns["conn-new"] = h.peer
			// Every earlier connection claiming agent-1 is closed: its own
			// and the stranger's unverified one.
			closed := slices.Sorted(slices.Values(h.loop.Deleted))
			if !slices.Equal(closed, []string{"conn-1", "conn-rogue"}) {
				t.Fatalf("closed %v, want [conn-1 conn-rogue]", closed)
			}
			if c, err := h.st.GetConnection(h.ctx, "conn-1"); err == nil && c.GoneAt.IsZero() {
				t.Fatalf("older connection still usable: %+v", c)
			}
			got := h.job(j.ID)
			if got.State != store.StateRequested || got.ConnectionID != "conn-new" {
				t.Fatalf("job %s at %q, want REQUESTED at conn-new", got.State, got.ConnectionID)
			}
			if pending != (got.RequestID == reqID) {
				t.Fatalf("pending %v: request %s, first was %s", pending, got.RequestID, reqID)
			}
			if pending {
				// The agent finishes the first request on its new connection.
				res, err := h.peer.Answer(h.ctx, first[0].Data)
				if err != nil {
					t.Fatal(err)
				}
				env, _ := protocol.Decode(res)
				if _, err := h.eng.HandleWrapResult(h.ctx, "conn-new", env); err != nil {
					t.Fatalf("result of the pending request: %v", err)
				}
			} else {
				// The first request's late result is refused; the new one is answered.
				res, err := h.peer.Answer(h.ctx, first[0].Data)
				if err != nil {
					t.Fatal(err)
				}
				env, _ := protocol.Decode(res)
				if _, err := h.eng.HandleWrapResult(h.ctx, "conn-new", env); !errors.Is(err, engine.ErrRejected) {
					t.Fatalf("late result of the handed-over request: %v, want ErrRejected", err)
				}
			}
			h.deliver()
			done := h.job(j.ID)
			h.requireState(done, store.StateSucceeded)
			imports := 0
			for _, tr := range done.History {
				if tr.To == store.StateImported {
					imports++
				}
			}
			if imports != 1 {
				t.Fatalf("imported %d times: %+v", imports, done.History)
			}
		})
	}
}
