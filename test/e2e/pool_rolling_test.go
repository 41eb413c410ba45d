package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/bench"
	"github.com/keyferry/keyferry/test/sandbox"
)

// rollingGroups is the fleet of TestRollingAgentRestartDuringFleetRotation.
const rollingGroups = 50

// kindRolling: two agents in the pool (Options.Agents) and a fleet of
// rollingGroups SYMMETRIC_DEFAULT groups; the functions in this process.
const kindRolling = "rolling"

func useRollingSandbox(t *testing.T) (*sandbox.Sandbox, []string) {
	t.Helper()
	set := bench.GroupSet{Prefix: "roll", InPlace: rollingGroups / 2, AliasSwap: rollingGroups - rollingGroups/2, WrappingKeySpec: "RSA_2048"}
	inPlace, swap := set.Names()
	names := append(inPlace, swap...)
	sbMu.Lock()
	defer sbMu.Unlock()
	if sbCur != nil && sbKind == kindRolling {
		return sbCur, names
	}
	closeSandbox()
	pol, err := os.ReadFile(filepath.Join("..", "sandbox", "policies", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	gfile, err := bench.WriteGroupsFile(t.TempDir(), pol, set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{
		Functions: sandbox.FunctionsInProcess, AgentBinary: agentBinary, GroupsFile: gfile, Agents: 2,
		// The fleet's jobs queue behind one another; the suite's short
		// timeouts are for the sweeper tests.
		JobTimeout: 5 * time.Minute, RequestTTL: time.Minute,
	})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	sbCur, sbKind, sbClock = s, kindRolling, &shiftClock{}
	return s, names
}

// TestRollingAgentRestartDuringFleetRotation: 50 groups rotate at once
// while the pool's two agents are restarted one after the other, each the
// way an operator does it (SIGTERM: the agent sends draining, finishes what
// it holds, exits; then start it again and wait for its hello) and each
// while it holds outstanding wrap requests. Every job SUCCEEDS (0 failed);
// the drained agent's requests it did not finish were handed over.
func TestRollingAgentRestartDuringFleetRotation(t *testing.T) {
	s, names := useRollingSandbox(t)
	dumpAgentLog(t, s)
	ctx := testCtx(t)
	if err := s.WaitAgents(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	b := s.PoolAgents[0]
	start := time.Now()
	tag := "roll-" + stamp()
	var mu sync.Mutex
	jobs := map[string]string{} // group -> job
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, g := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := s.Trigger(ctx, g, "schedule", tag)
			if err != nil || r.JobID == "" {
				t.Errorf("trigger %s: %v %s %s", g, err, r.Outcome, r.Reason)
				return
			}
			mu.Lock()
			jobs[g] = r.JobID
			mu.Unlock()
		}()
	}

	// outstandingAt waits until agent id holds a wrap request and returns
	// how many it holds.
	outstandingAt := func(id string) int {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			reqs, err := s.Deps.Store.JobsInState(ctx, store.StateRequested, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, j := range reqs {
				if j.AgentID == id && strings.HasPrefix(j.Group, "roll-") {
					n++
				}
			}
			if n > 0 {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent %s never held a request of the fleet", id)
			}
		}
	}
	type restart struct {
		agent          string
		held           int
		drained, hello time.Duration
	}
	var restarts []restart
	roll := func(id string, stop func() error, startAgain func() error) {
		t.Helper()
		held := outstandingAt(id)
		t0 := time.Now()
		if err := stop(); err != nil {
			t.Fatalf("SIGTERM %s: %v", id, err)
		}
		drained := time.Since(t0)
		if drained >= 10*time.Second {
			t.Fatalf("agent %s took %s to drain: SIGKILLed, not drained", id, drained)
		}
		if err := startAgain(); err != nil {
			t.Fatal(err)
		}
		waitAgentConn(t, s, id)
		restarts = append(restarts, restart{id, held, drained, time.Since(t0)})
	}
	roll(sandbox.AgentID, s.StopAgent, func() error { return s.StartAgent(ctx) })
	roll(b.ID, func() error { return b.Signal(syscall.SIGTERM) }, b.Start)
	wg.Wait()

	failed, byAgent, handed := 0, map[string]int{}, 0
	for _, g := range names {
		id := jobs[g]
		if id == "" {
			failed++
			continue
		}
		j, err := s.WaitJob(ctx, id, 3*time.Minute)
		if err != nil || j.State != store.StateSucceeded {
			failed++
			reason := ""
			if j != nil {
				reason = fmt.Sprintf("%s: %s; agent %s connection %s; history:", j.State, j.Reason, j.AgentID, j.ConnectionID)
				for _, h := range j.History {
					reason += fmt.Sprintf("\n  %s %s %s", h.At.Format("15:04:05.000"), h.To, h.Note)
				}
			}
			t.Errorf("group %s job %s: %v %s", g, id, err, reason)
			continue
		}
		byAgent[j.AgentID]++
		for _, h := range j.History {
			if strings.Contains(h.Note, "hand it to another agent") {
				handed++
				break
			}
		}
	}
	for _, r := range restarts {
		t.Logf("restart %s: held %d requests at SIGTERM, drained in %s, hello again after %s", r.agent, r.held, r.drained.Round(time.Millisecond), r.hello.Round(time.Millisecond))
	}
	t.Logf("%d groups in %s: %d failed, jobs by agent %v, %d handed over", len(names), time.Since(start).Round(time.Millisecond), failed, byAgent, handed)
	if failed != 0 {
		t.Fatalf("%d of %d jobs failed during the rolling restart", failed, len(names))
	}
}
