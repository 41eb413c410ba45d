package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/agentpeer"
)

// withSecondAgent registers "agent-2" in pool p1 (same token as agent-1:
// one logical HSM) and connects it as "conn-2".
func withSecondAgent(t *testing.T, h *harness) *agentpeer.Peer {
	t.Helper()
	p2, err := agentpeer.New(h.ctx, theHSM, "agent-2", "p1", h.peer.ControlPlane)
	if err != nil {
		t.Fatal(err)
	}
	p2.Now = emu.Now
	pool, _ := h.cfg.Pool("p1")
	pool.Agents = append(pool.Agents, groups.Agent{ID: "agent-2", PublicKey: p2.PublicKeyPEM()})
	h.connect("conn-2", p2)
	return p2
}

func symGroups(names ...string) string {
	var b strings.Builder
	for _, g := range names {
		fmt.Fprintf(&b, "  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: alias-swap\n    alias: alias/%s\n", g, g)
	}
	return b.String()
}

// TestPoolSpreadsToTheLeastLoadedAgent: with two live agents and wrap
// requests left unanswered, each new request goes to the agent with fewer
// outstanding ones, so four requests land two and two.
func TestPoolSpreadsToTheLeastLoadedAgent(t *testing.T) {
	var names []string
	for i := 0; i < 4; i++ {
		names = append(names, uniq("spread"))
	}
	h := newHarness(t, symGroups(names...))
	withSecondAgent(t, h)
	for _, g := range names {
		if _, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t")); err != nil {
			t.Fatal(err)
		}
	}
	load, err := h.eng.Outstanding(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if load["conn-1"] != 2 || load["conn-2"] != 2 {
		t.Fatalf("outstanding per connection %v, want 2 and 2", load)
	}
	if n := h.deliver(); n != 4 {
		t.Fatalf("delivered %d results, want 4", n)
	}
}

// TestPoolHandsOverWhenTheAgentLeaves: the wrap request outstanding at one
// agent goes to the other at once when its connection closes, when it
// says it is draining, or when it stays silent past its heartbeat lapse;
// the first agent's late result (genuine, signed) is refused and changes
// nothing, and the job SUCCEEDS on the other agent's result with the same
// HSM key.
func TestPoolHandsOverWhenTheAgentLeaves(t *testing.T) {
	cases := []struct {
		name  string
		leave func(h *harness, c *store.Connection) error
		note  string
	}{
		{"connection closed", func(h *harness, c *store.Connection) error {
			if err := h.st.DeleteConnection(h.ctx, c.ID); err != nil {
				return err
			}
			return h.eng.ConnectionClosed(h.ctx, c)
		}, "connection closed"},
		{"draining", func(h *harness, c *store.Connection) error {
			p := h.conns[c.ID]
			b, err := protocol.Seal(h.ctx, p.Identity, p.ID, protocol.ActionDraining, protocol.Draining{AgentID: p.ID, SentAt: emu.Now()})
			if err != nil {
				return err
			}
			env, err := protocol.Decode(b)
			if err != nil {
				return err
			}
			// Signed by the other agent: refused, nothing handed over.
			other := h.conns["conn-1"]
			if other == p {
				other = h.conns["conn-2"]
			}
			forged, _ := protocol.Seal(h.ctx, other.Identity, other.ID, protocol.ActionDraining, protocol.Draining{AgentID: other.ID, SentAt: emu.Now()})
			fenv, _ := protocol.Decode(forged)
			if err := h.eng.HandleDraining(h.ctx, c.ID, fenv); !errors.Is(err, engine.ErrRejected) {
				return fmt.Errorf("draining signed by another agent: %v, want ErrRejected", err)
			}
			return h.eng.HandleDraining(h.ctx, c.ID, env)
		}, "draining without request"},
		{"heartbeat lapsed", func(h *harness, c *store.Connection) error {
			c.LastSeen = time.Now().Add(-c.Lapse - time.Second)
			if err := h.st.PutConnection(h.ctx, c); err != nil {
				return err
			}
			n, err := h.eng.ReapSilent(h.ctx, "p1")
			if err == nil && n != 1 {
				err = fmt.Errorf("ReapSilent handed over %d jobs, want 1", n)
			}
			return err
		}, "heartbeat lapse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := uniq("handover")
			h := newHarness(t, symGroups(g))
			withSecondAgent(t, h)
			j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
			if err != nil {
				t.Fatal(err)
			}
			msgs := h.loop.Take()
			if len(msgs) != 1 {
				t.Fatalf("%d requests", len(msgs))
			}
			first := msgs[0].ConnectionID
			// The first agent generates the key and answers, but its answer
			// is held back: it is the late duplicate.
			late, err := h.conns[first].Answer(h.ctx, msgs[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			c, err := h.st.GetConnection(h.ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.leave(h, c); err != nil {
				t.Fatal(err)
			}
			j = h.job(j.ID)
			h.requireState(j, store.StateRequested)
			if j.ConnectionID == first || j.ConnectionID == "" {
				t.Fatalf("request still at %q after the agent left, want the other agent", j.ConnectionID)
			}
			handed := false
			for _, tr := range j.History {
				handed = handed || (tr.To == store.StateParams && strings.Contains(tr.Note, tc.note))
			}
			if !handed {
				t.Errorf("history does not record the hand-over (%q): %+v", tc.note, j.History)
			}
			env, err := protocol.Decode(late)
			if err != nil {
				t.Fatal(err)
			}
			before := h.job(j.ID)
			if _, err := h.eng.HandleWrapResult(h.ctx, first, env); !errors.Is(err, engine.ErrRejected) {
				t.Fatalf("late result of the first agent: %v, want ErrRejected", err)
			}
			if after := h.job(j.ID); after.Version != before.Version || after.State != store.StateRequested {
				t.Fatalf("late result changed the job: v%d %s -> v%d %s", before.Version, before.State, after.Version, after.State)
			}
			if n := h.deliver(); n != 1 {
				t.Fatalf("delivered %d, want the other agent's one result", n)
			}
			done := h.job(j.ID)
			h.requireState(done, store.StateSucceeded)
			if done.AgentID == h.conns[first].ID {
				t.Errorf("job finished by %s, the agent that left", done.AgentID)
			}
			imports := 0
			for _, tr := range done.History {
				if tr.To == store.StateImported {
					imports++
				}
			}
			if imports != 1 {
				t.Errorf("%d imports, want exactly 1", imports)
			}
		})
	}
}

// TestPoolJobWaitsForTheOnlyCapableAgent: an agent that is gone, draining
// or silent gets no request; with no usable agent the job waits in PARAMS
// (ErrNoAgent, not failed), and the next hello of the pool runs it on.
func TestPoolJobWaitsForTheOnlyCapableAgent(t *testing.T) {
	g := uniq("waits")
	h := newHarness(t, symGroups(g))
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
	if err != nil {
		t.Fatal(err)
	}
	h.loop.Take() // never answered
	c, err := h.st.GetConnection(h.ctx, "conn-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.DeleteConnection(h.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.ConnectionClosed(h.ctx, c); err != nil {
		t.Fatal(err)
	}
	h.requireState(h.job(j.ID), store.StateParams)
	if n := len(h.loop.Take()); n != 0 {
		t.Fatalf("%d requests posted with no agent connected", n)
	}
	h.connect("conn-3", h.peer)
	if n := h.deliver(); n != 1 {
		t.Fatalf("delivered %d after the hello, want 1", n)
	}
	h.requireState(h.job(j.ID), store.StateSucceeded)
}

// TestEveryConnectionGoneWaitsForAnyAgentOfThePool: when every post of a
// wrap_request answers GoneException, no agent holds it: the job goes back
// to PARAMS (not left REQUESTED at the gone connection), and the next hello
// of any agent of the pool, not only the one tried, runs it to SUCCEEDED.
func TestEveryConnectionGoneWaitsForAnyAgentOfThePool(t *testing.T) {
	g := uniq("allgone")
	h := newHarness(t, symGroups(g))
	h.loop.SetGone("conn-1")
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
	if !errors.Is(err, engine.ErrNoAgent) || j == nil {
		t.Fatalf("start: %+v %v, want ErrNoAgent", j, err)
	}
	got := h.job(j.ID)
	if got.State != store.StateParams || got.ConnectionID != "" {
		t.Fatalf("job %s at %q, want PARAMS held by no connection", got.State, got.ConnectionID)
	}
	withSecondAgent(t, h) // agent-2's hello on conn-2
	if n := h.deliver(); n != 1 {
		t.Fatalf("delivered %d after agent-2's hello, want 1", n)
	}
	done := h.job(j.ID)
	h.requireState(done, store.StateSucceeded)
	if done.AgentID != "agent-2" {
		t.Fatalf("wrapped by %s, want agent-2", done.AgentID)
	}
}

// TestHelloHandsOnEveryWaitingJob: with a Handoff, a hello hands on every
// job of the pool that waits for an agent, not the first 16 (the cap is
// for an engine that runs them inline). 20 jobs wait in PARAMS after every
// connection went; agent-2's hello hands on all 20.
func TestHelloHandsOnEveryWaitingJob(t *testing.T) {
	const n = 20
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, uniq(fmt.Sprintf("wait%02d", i)))
	}
	h := newHarness(t, symGroups(names...))
	h.loop.SetGone("conn-1")
	for _, g := range names {
		if _, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t")); !errors.Is(err, engine.ErrNoAgent) {
			t.Fatalf("start %s: %v, want ErrNoAgent", g, err)
		}
	}
	q := newJobQueue(t, 30*time.Second)
	h.eng.Handoff = q.handoff()
	withSecondAgent(t, h)
	seen := map[string]bool{}
	for {
		id, _ := q.receive(2 * time.Second)
		if id == "" {
			break
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("agent-2's hello handed on %d jobs, want all %d waiting", len(seen), n)
	}
}
