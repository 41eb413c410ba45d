//go:build keyferrytest

package engine_test

// The tests that inject a crash (or act) between two steps through the
// engine's test seam (Engine.AfterStep, seam_keyferrytest.go): they need
// -tags keyferrytest, which make test passes.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
)

// TestCrashBetweenEverySteps injects a crash after every committed
// transition of an alias-swap and an in-place rotation, then resumes the
// job (as the next event or the sweeper would): it always ends SUCCEEDED,
// and the alias never points at a key without material.
func TestCrashBetweenEverySteps(t *testing.T) {
	for _, mode := range []string{"alias-swap", "in-place"} {
		t.Run(mode, func(t *testing.T) {
			g := uniq("crash")
			h := newHarness(t, symGroup(g, mode))
			alias := "alias/" + g
			h.requireState(h.rotate(g, "initial"), store.StateSucceeded)
			for crashAt := 1; ; crashAt++ {
				steps := 0
				crashed := false
				h.eng.AfterStep = func(j *store.Job) error {
					steps++
					if steps == crashAt {
						crashed = true
						return engine.ErrCrash
					}
					return nil
				}
				j, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: fmt.Sprintf("crash-%d", crashAt)})
				if err != nil && !errors.Is(err, engine.ErrCrash) {
					t.Fatal(err)
				}
				if !crashed {
					// The crash point lies after the wrap_request: let the answer arrive.
					if _, err := h.deliverErr(); err != nil && !errors.Is(err, engine.ErrCrash) {
						t.Fatal(err)
					}
				}
				// The alias must point at a usable key at every crash point.
				if md := h.aliasTarget(alias); md.KeyState != kmstypes.KeyStateEnabled {
					t.Fatalf("crash at step %d: alias on key %s in state %s", crashAt, aws.ToString(md.Arn), md.KeyState)
				}
				h.eng.AfterStep = nil
				if crashed {
					if _, err := h.eng.Resume(h.ctx, j.ID); err != nil {
						t.Fatalf("resume after crash at step %d: %v", crashAt, err)
					}
					h.deliver()
				}
				final := h.job(j.ID)
				h.requireState(final, store.StateSucceeded)
				if md := h.aliasTarget(alias); aws.ToString(md.Arn) != final.KeyARN || md.KeyState != kmstypes.KeyStateEnabled {
					t.Fatalf("crash at step %d: alias -> %s (%s), want %s", crashAt, aws.ToString(md.Arn), md.KeyState, final.KeyARN)
				}
				if !crashed {
					if crashAt < 5 {
						t.Fatalf("only %d steps observed", crashAt)
					}
					return
				}
			}
		})
	}
}

func TestExpiredImportParametersAskAgain(t *testing.T) {
	g := uniq("exp")
	h := newHarness(t, symGroup(g, "alias-swap"))
	advanced := false
	h.eng.AfterStep = func(j *store.Job) error {
		if j.State == store.StateResult && !advanced {
			// The wrapped material is in, but a day passes before the import:
			// the import token (24 h) has expired.
			advanced = true
			emu.Advance(25 * time.Hour)
		}
		return nil
	}
	j := h.rotate(g, "t")
	h.requireState(j, store.StateSucceeded)
	asked := 0
	for _, tr := range j.History {
		if tr.To == store.StateParams {
			asked++
		}
	}
	if !advanced || asked != 2 {
		t.Fatalf("import parameters fetched %d times, want a refetch after expiry: %+v", asked, j.History)
	}
	if n := len(h.peer.Requests); n < 2 {
		t.Fatalf("agent asked %d times, want again after the refetch", n)
	}
}

// TestInvariantNoAliasOnKeyWithoutMaterial_FailureAfterAliasMove: a job
// that fails after its alias moved (here: its generation number was
// recorded by another job meanwhile) keeps its key. The failed-job cleanup
// never deletes the material of, or schedules deletion of, a key the
// group's alias was moved to: the alias stays on a usable key, and data
// encrypted under it meanwhile still decrypts after the next rotation.
func TestInvariantNoAliasOnKeyWithoutMaterial_FailureAfterAliasMove(t *testing.T) {
	g := uniq("afteralias")
	h := newHarness(t, symGroup(g, "alias-swap"))
	alias := "alias/" + g
	h.requireState(h.rotate(g, "r1"), store.StateSucceeded)
	h.eng.AfterStep = func(j *store.Job) error {
		if j.State == store.StateVerified {
			// Another job records this generation number first.
			return h.st.PutGeneration(h.ctx, &store.Generation{Group: g, Generation: j.Generation, KeyARN: "arn:other", HSMLabel: "kf/other", JobID: "job-other", State: store.GenPrevious})
		}
		return nil
	}
	j := h.rotate(g, "r2")
	h.eng.AfterStep = nil
	h.requireState(j, store.StateFailed)
	if !strings.Contains(j.Reason, "recorded by another job") {
		t.Fatalf("reason %q", j.Reason)
	}
	if _, _, err := h.eng.Sweep(h.ctx); err != nil && !strings.Contains(err.Error(), "no live agent") {
		t.Logf("sweep: %v", err)
	}
	md := h.aliasTarget(alias)
	if aws.ToString(md.Arn) != j.KeyARN {
		t.Fatalf("setup: alias -> %s, want the failed job's key %s (the failure came after the move)", aws.ToString(md.Arn), j.KeyARN)
	}
	if md.KeyState != kmstypes.KeyStateEnabled {
		t.Fatalf("alias %s is on key %s in state %s: the failed-job cleanup removed the aliased key", alias, j.KeyARN, md.KeyState)
	}
	// Data encrypted through the alias meanwhile stays decryptable after
	// the next rotation moves the alias on and the sweeper runs again.
	b := h.useAlias(alias, "SYMMETRIC_DEFAULT")
	h.requireState(h.rotate(g, "r3"), store.StateSucceeded)
	if _, _, err := h.eng.Sweep(h.ctx); err != nil && !strings.Contains(err.Error(), "no live agent") {
		t.Logf("sweep: %v", err)
	}
	h.checkBefore(b, "SYMMETRIC_DEFAULT")
}

// TestWorkerKilledMidStepResumesFromQueue: a worker invocation that dies
// after a committed step (its message never deleted) is delivered again
// by the queue after the visibility timeout, and the next worker resumes
// the job from its last recorded state: no sweeper, no job deadline.
func TestWorkerKilledMidStepResumesFromQueue(t *testing.T) {
	g := uniq("killed")
	h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: alias-swap\n    alias: alias/%s\n", g, g))
	q := newJobQueue(t, 1*time.Second)
	h.eng.Handoff = q.handoff()
	j, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "killed-" + g})
	if err != nil {
		t.Fatal(err)
	}
	crashed := false
	h.eng.AfterStep = func(j *store.Job) error {
		if !crashed && j.State == store.StateKeyReady {
			crashed = true
			return engine.ErrCrash
		}
		return nil
	}
	jobID, _ := q.receive(5 * time.Second)
	if err := h.eng.Work(h.ctx, jobID); !errors.Is(err, engine.ErrCrash) {
		t.Fatalf("worker: %v, want the injected crash", err)
	}
	// The message was not deleted: it comes back after the visibility
	// timeout (1 s), not after a sweep or the job's deadline (minutes).
	// Only the wait for the message is timed, not the worker's run after
	// it (seconds on a loaded machine).
	start := time.Now()
	got, receipt := q.receive(20 * time.Second)
	back := time.Since(start)
	if got != j.ID {
		t.Fatalf("job queue: got message for %q after %s, want %q", got, back, j.ID)
	}
	if back > 15*time.Second {
		t.Fatalf("redelivery took %s (visibility timeout 1 s)", back)
	}
	if err := h.eng.Work(h.ctx, got); err != nil {
		t.Fatalf("redelivered worker: %v", err)
	}
	q.done(receipt)
	h.requireState(h.job(j.ID), store.StateRequested)
	h.deliver()
	if err := h.work(q, j.ID); err != nil {
		t.Fatal(err)
	}
	done := h.job(j.ID)
	h.requireState(done, store.StateSucceeded)
	if done.Attempts != 0 {
		t.Fatalf("the job went through the sweeper (%d attempts)", done.Attempts)
	}
}
