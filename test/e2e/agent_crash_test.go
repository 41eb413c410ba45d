package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
)

// TestAgentKilledMidRotation: the agent is frozen with a wrap_request in
// its socket and then SIGKILLed, so the request is lost; while it is down
// the alias stays on the old key and the new key has no material; after a
// restart its hello no longer lists the request, the engine asks again at
// once and the job SUCCEEDS on the new connection.
func TestAgentKilledMidRotation(t *testing.T) {
	s, clk := useSandbox(t, kindClock)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	// The REQUESTED deadline is the request's expiry plus the engine's skew;
	// a short skew lets the sweeper's clock pass it without leaving the
	// agent's 2 min tolerance.
	eng := s.Deps.Engine
	oldSkew := eng.Skew
	eng.Skew = 5 * time.Second
	t.Cleanup(func() { eng.Skew = oldSkew; clk.Set(0) })

	const group = "archive-data"
	g, _ := s.Groups.Group(group)
	before := makeProof(t, s, g)

	pid := s.AgentPID()
	if pid == 0 {
		t.Fatal("no agent running")
	}
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r := schedule(t, s, group, "e2e-crash-"+time.Now().UTC().Format("150405.000"))
	t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGCONT) })
	// The worker sends the wrap_request to the frozen agent.
	reachState(t, s, r.JobID, store.StateRequested)
	if err := s.KillAgent(); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, s, 0)

	// The connection's close hands the outstanding request back (PARAMS:
	// the job waits for a live agent of the pool; none is left here).
	j := reachState(t, s, r.JobID, store.StateParams)
	if !j.NewKey {
		t.Fatalf("job after the crash: %+v", j)
	}
	if st := describe(t, s, j.KeyARN).KeyState; st != kmstypes.KeyStatePendingImport {
		t.Errorf("the job's new key is %s, want PendingImport", st)
	}
	if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != before.keyARN {
		t.Errorf("alias moved to %s while the job had no material", arn)
	}
	aliasesResolveToUsableKeys(t, s)
	// Before the deadline the sweeper leaves it alone.
	if res := sweep(t, s); res.Retried != 0 || res.Failed != 0 {
		t.Errorf("sweep before the deadline: %+v", res)
	}

	// The restarted agent's hello makes it the pool's live agent: the
	// engine asks it at once, without waiting for the sweeper.
	if err := s.StartAgent(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, s, 1)
	done := succeeded(t, s, r.JobID)
	if done.KeyARN != j.KeyARN || done.Attempts != 0 {
		t.Errorf("job finished on %s after %d sweeper attempts, want %s after none", done.KeyARN, done.Attempts, j.KeyARN)
	}
	handedBack, reasked := false, false
	for _, h := range done.History {
		handedBack = handedBack || strings.Contains(h.Note, "connection closed with request")
		reasked = reasked || (handedBack && h.To == store.StateRequested)
	}
	if !handedBack || !reasked {
		t.Errorf("history does not show the hand-back on close and the new request on reconnect: %+v", done.History)
	}
	if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != done.KeyARN {
		t.Errorf("alias -> %s, want the job's key %s", arn, done.KeyARN)
	}
	before.mustCheck(t, s)
	makeProof(t, s, g).mustCheck(t, s)
	aliasesResolveToUsableKeys(t, s)
}
