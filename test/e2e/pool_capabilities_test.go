package e2e

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/test/sandbox"
)

// advertises reports whether agent id's hello'd connection lists spec.
func advertises(c *store.Connection, spec keyspec.Spec) bool {
	return slices.ContainsFunc(c.Capabilities, func(cp store.Capability) bool { return cp.KeySpec == string(spec) })
}

// requestedTo lists the agents a job's wrap_requests went to, from its history.
func requestedTo(j *store.Job) []string {
	var out []string
	for _, h := range j.History {
		if _, to, ok := strings.Cut(h.Note, " to "); ok && strings.HasPrefix(h.Note, "wrap_request ") {
			out = append(out, to)
		}
	}
	return out
}

// TestPoolAgentsWithDifferentCapabilities: agent A of the two-agent pool is
// limited to the symmetric and HMAC key specs (policy.key_specs, so its
// hello leaves ECC_NIST_P256 out); agent B can do every spec. A P-256 job:
//   - goes to B even while B holds more outstanding requests than A (the
//     spread alone would pick A; an HMAC job started then does go to A);
//   - with B killed holding its request, waits in PARAMS (never sent to
//     A) and SUCCEEDS via B once B is back;
//   - with B gone, fails at once with a reason naming ECC_NIST_P256 and
//     the pool, never sent to A.
func TestPoolAgentsWithDifferentCapabilities(t *testing.T) {
	s, b := usePoolSandbox(t)
	dumpAgentLog(t, s)
	const onlyB, both = "token-signing", "webhook-mac" // ECC_NIST_P256, HMAC_256
	spec := keyspec.ECCNISTP256
	waitAgentConn(t, s, poolAgentID)

	// A: symmetric and HMAC only.
	restartA := func() {
		t.Helper()
		if err := s.StopAgent(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); agentConn(t, s, sandbox.AgentID) != nil; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("agent A's connection outlived its process")
			}
		}
		if err := s.StartAgent(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		waitAgentConn(t, s, sandbox.AgentID)
	}
	if err := s.SetAgentKeySpecs(sandbox.AgentID, []string{string(keyspec.SymmetricDefault), string(keyspec.HMAC256)}); err != nil {
		t.Fatal(err)
	}
	restartA()
	t.Cleanup(func() {
		if !b.Running() {
			_ = b.Start()
		}
		if err := s.SetAgentKeySpecs(sandbox.AgentID, nil); err != nil {
			t.Error(err)
			return
		}
		restartA()
	})
	a, bc := waitAgentConn(t, s, sandbox.AgentID), waitAgentConn(t, s, poolAgentID)
	if advertises(a, spec) || !advertises(a, keyspec.HMAC256) || !advertises(bc, spec) {
		t.Fatalf("hello capabilities: A %+v, B %+v; want A without %s, B with it", a.Capabilities, bc.Capabilities, spec)
	}

	t.Run("goes_to_B_even_when_B_is_busier", func(t *testing.T) {
		// B frozen with an HMAC request outstanding (A draining meanwhile).
		setDraining(t, s, sandbox.AgentID, true)
		if err := b.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				b.Signal(syscall.SIGCONT)
			}
		}()
		busy := schedule(t, s, both, "e2e-caps-busy-"+stamp())
		if j := reachState(t, s, busy.JobID, store.StateRequested); j.AgentID != poolAgentID {
			t.Fatalf("HMAC job with A draining went to %s", j.AgentID)
		}
		setDraining(t, s, sandbox.AgentID, false)
		// B: 1 outstanding, A: 0. The P-256 job still goes to B ...
		x := schedule(t, s, onlyB, "e2e-caps-x-"+stamp())
		if j := reachState(t, s, x.JobID, store.StateRequested); j.AgentID != poolAgentID {
			t.Fatalf("%s job went to %s, the agent without %s", onlyB, j.AgentID, spec)
		}
		// ... while the spread sends a spec both can do to the idle A.
		z := schedule(t, s, "payments-data", "e2e-caps-z-"+stamp())
		if j := reachState(t, s, z.JobID, store.StateRequested); j.AgentID != sandbox.AgentID {
			t.Fatalf("symmetric job with B busier went to %s, want the idle %s", j.AgentID, sandbox.AgentID)
		}
		b.Signal(syscall.SIGCONT)
		stopped = false
		for _, id := range []string{busy.JobID, x.JobID, z.JobID} {
			succeeded(t, s, id)
		}
		if done := succeeded(t, s, x.JobID); done.AgentID != poolAgentID || slices.Contains(requestedTo(done), sandbox.AgentID) {
			t.Fatalf("%s job: agent %s, requests to %v", onlyB, done.AgentID, requestedTo(done))
		}
	})

	t.Run("waits_for_B_when_B_leaves_holding_it", func(t *testing.T) {
		if err := b.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		x := schedule(t, s, onlyB, "e2e-caps-wait-"+stamp())
		if j := reachState(t, s, x.JobID, store.StateRequested); j.AgentID != poolAgentID {
			t.Fatalf("went to %s", j.AgentID)
		}
		if err := b.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Handed back on $disconnect, then nowhere to go: it waits.
		j := reachState(t, s, x.JobID, store.StateParams)
		time.Sleep(3 * time.Second)
		if j, _ = s.Deps.Store.GetJob(testCtx(t), x.JobID); j.State != store.StateParams || slices.Contains(requestedTo(j), sandbox.AgentID) {
			t.Fatalf("with B gone the job is %s (%s), requests to %v; want waiting in PARAMS, never sent to A", j.State, j.Reason, requestedTo(j))
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		done := succeeded(t, s, x.JobID)
		if done.AgentID != poolAgentID || slices.Contains(requestedTo(done), sandbox.AgentID) {
			t.Fatalf("agent %s, requests to %v", done.AgentID, requestedTo(done))
		}
		t.Logf("%s: requests to %v, SUCCEEDED via %s after B came back", done.ID, requestedTo(done), done.AgentID)
	})

	t.Run("fails_naming_the_capability_with_B_gone", func(t *testing.T) {
		waitAgentConn(t, s, poolAgentID)
		if err := b.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// $disconnect runs when B's socket closes, after B's graceful
		// shutdown; on a loaded CI machine that has taken over 20 s.
		for deadline := time.Now().Add(60 * time.Second); agentConn(t, s, poolAgentID) != nil; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				tail, _ := os.ReadFile(b.Log)
				if len(tail) > 6000 {
					tail = tail[len(tail)-6000:]
				}
				t.Fatalf("agent B's connection outlived its process by 60 s; B's log (tail):\n%s", tail)
			}
		}
		x := schedule(t, s, onlyB, "e2e-caps-gone-"+stamp())
		j, err := s.WaitJob(testCtx(t), x.JobID, waitJob)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != store.StateFailed || !strings.Contains(j.Reason, string(spec)) || !strings.Contains(j.Reason, sandbox.Pool) ||
			slices.Contains(requestedTo(j), sandbox.AgentID) {
			t.Fatalf("job %s %s (%s), requests to %v; want FAILED naming %s and pool %s, never sent to A", j.ID, j.State, j.Reason, requestedTo(j), spec, sandbox.Pool)
		}
		t.Logf("%s FAILED: %s", j.ID, j.Reason)
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		waitAgentConn(t, s, poolAgentID)
	})
}

func stamp() string { return time.Now().UTC().Format("150405.000") }
