package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
)

// TestAgentOfflineWhenScheduleFires: with no agent connected a scheduled
// rotation is accepted and waits (not terminal, no reason); when the agent
// is back, its hello resumes the job at once (no sweeper needed).
func TestAgentOfflineWhenScheduleFires(t *testing.T) {
	s, clk := useSandbox(t, kindClock)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	t.Cleanup(func() { clk.Set(0) })
	const group = "ledger-signing"
	g, _ := s.Groups.Group(group)
	before := makeProof(t, s, g)

	if err := s.StopAgent(); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, s, 0)
	r := schedule(t, s, group, "e2e-offline-"+time.Now().UTC().Format("150405.000"))
	if r.JobID == "" || r.State.Terminal() || r.Reason != "" {
		t.Fatalf("schedule with no agent: %+v, want a waiting job", r)
	}
	t.Logf("job %s waits in %s", r.JobID, r.State)
	if res := sweep(t, s); res.Retried != 0 || res.Failed != 0 {
		t.Errorf("sweep before the deadline: %+v", res)
	}
	if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != before.keyARN {
		t.Errorf("alias moved to %s with no agent", arn)
	}

	// The returning agent's hello resumes the waiting job at once.
	if err := s.StartAgent(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, s, 1)
	j := succeeded(t, s, r.JobID)
	if j.Attempts != 0 {
		t.Errorf("job needed %d sweeper attempts, want none (resumed by the agent's hello)", j.Attempts)
	}
	if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != j.KeyARN {
		t.Errorf("alias -> %s, want %s", arn, j.KeyARN)
	}
	before.mustCheck(t, s)
	makeProof(t, s, g).mustCheck(t, s)
}

// TestAgentOfflineJobFailsAtDeadline: if the agent never returns, the
// sweeper retries the waiting job MaxAttempts (3) times, then fails it with
// a reason; the key it created is scheduled for deletion (no key left in
// PendingImport), the alias never moved, and the group rotates again once
// the agent is back.
func TestAgentOfflineJobFailsAtDeadline(t *testing.T) {
	s, clk := useSandbox(t, kindClock)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	t.Cleanup(func() { clk.Set(0) })
	const group = "archive-data"
	g, _ := s.Groups.Group(group)
	before := makeProof(t, s, g)

	if err := s.StopAgent(); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, s, 0)
	r := schedule(t, s, group, "e2e-deadline-"+time.Now().UTC().Format("150405.000"))
	if r.JobID == "" || r.State.Terminal() {
		t.Fatalf("schedule with no agent: %+v, want a waiting job", r)
	}
	var j *store.Job
	var err error
	for i := 1; i <= 6; i++ {
		clk.Set(time.Duration(i) * (jobTimeout + time.Second))
		sweep(t, s)
		if j, err = s.Deps.Store.GetJob(testCtx(t), r.JobID); err != nil {
			t.Fatal(err)
		}
		if j.State.Terminal() {
			break
		}
	}
	if j.State != store.StateFailed || !strings.Contains(j.Reason, "deadline exceeded") || j.Attempts != 3 {
		t.Fatalf("job %s: %s after %d attempts, reason %q; want FAILED at its deadline after 3", j.ID, j.State, j.Attempts, j.Reason)
	}
	t.Logf("failed: %s", j.Reason)
	if j.KeyARN != "" {
		if st := describe(t, s, j.KeyARN).KeyState; st != kmstypes.KeyStatePendingDeletion {
			t.Errorf("failed job's key %s is %s, want PendingDeletion", j.KeyARN, st)
		}
	}
	if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != before.keyARN {
		t.Errorf("alias moved to %s by a failed job", arn)
	}
	before.mustCheck(t, s)
	clk.Set(0)

	if err := s.StartAgent(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, s, 1)
	succeeded(t, s, schedule(t, s, group, "e2e-deadline-after-"+time.Now().UTC().Format("150405.000")).JobID)
	aliasesResolveToUsableKeys(t, s)
}
