package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
)

func symGroup(g, mode string) string {
	return fmt.Sprintf("  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: %s\n    alias: alias/%s\n", g, mode, g)
}

func TestDuplicateTriggerStartsOneJob(t *testing.T) {
	g := uniq("dup")
	h := newHarness(t, symGroup(g, "alias-swap"))
	req := engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "sched-2026-01-01T00:00Z"}
	j1, o1, err := h.eng.Start(h.ctx, req)
	if err != nil || o1 != store.Started {
		t.Fatalf("first: %s %v", o1, err)
	}
	j2, o2, err := h.eng.Start(h.ctx, req)
	if err != nil || o2 != store.Duplicate || j2.ID != j1.ID {
		t.Fatalf("redelivery: outcome %s job %s err %v, want duplicate of %s", o2, j2.ID, err, j1.ID)
	}
	if n := len(h.loop.Take()); n != 1 {
		t.Fatalf("%d wrap_requests sent, want 1", n)
	}
}

func TestConcurrentTriggersOneRunsOtherSkipped(t *testing.T) {
	g := uniq("conc")
	h := newHarness(t, symGroup(g, "alias-swap"))
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[store.Outcome]int{}
	var skipped *store.Job
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, o, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "alarm", TriggerID: fmt.Sprintf("trig-%d", i)})
			if err != nil {
				t.Errorf("trigger %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			outcomes[o]++
			if o == store.Skipped {
				skipped = j
			}
		}()
	}
	wg.Wait()
	if outcomes[store.Started] != 1 || outcomes[store.Skipped] != 1 {
		t.Fatalf("outcomes %v, want one started and one skipped", outcomes)
	}
	rec := h.job(skipped.ID)
	if rec.State != store.StateSkipped || !strings.Contains(rec.Reason, "already running") {
		t.Fatalf("skipped job recorded as %s %q", rec.State, rec.Reason)
	}
	h.deliver()
}

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

// TestUnwrappableSpecFailsAndCleansUp: SoftHSM 2.6.1 cannot produce an
// RFC 5649 wrap of a P-256 PKCS#8 key (see the HSM layer's capability
// probe), so the agent offers nothing for it: the job fails with that
// reason and its new key does not stay in PendingImport.
func TestUnwrappableSpecFailsAndCleansUp(t *testing.T) {
	g := uniq("p256")
	h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: ECC_NIST_P256\n    key_usage: SIGN_VERIFY\n    alias: alias/%s\n", g, g))
	j, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	j = h.job(j.ID)
	h.requireState(j, store.StateFailed)
	if !strings.Contains(j.Reason, "no connected agent") {
		t.Fatalf("reason %q", j.Reason)
	}
	d, err := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(j.KeyARN)})
	if err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Fatalf("failed job's key is %v (%v), want PendingDeletion", d.KeyMetadata.KeyState, err)
	}
}

func TestGoneConnectionTriesAnother(t *testing.T) {
	g := uniq("gone")
	h := newHarness(t, symGroup(g, "alias-swap"))
	h.connect("conn-2", h.peer)
	h.loop.SetGone("conn-1")
	j := h.rotate(g, "t")
	h.requireState(j, store.StateSucceeded)
	if j.ConnectionID != "conn-2" {
		t.Fatalf("answered on %s, want conn-2", j.ConnectionID)
	}
	// Marked, not forgotten: a spurious Gone must not make the control plane
	// lose a live agent ($disconnect deletes dead ones; a heartbeat clears
	// the mark). Marked connections get no further requests.
	c, err := h.st.GetConnection(h.ctx, "conn-1")
	if err != nil || c.GoneAt.IsZero() {
		t.Fatalf("gone connection: %+v, %v; want it kept and marked", c, err)
	}
	h.loop.SetGone("conn-2")
	j2, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "t2"})
	if !errors.Is(err, engine.ErrNoAgent) || j2 == nil || j2.State.Terminal() || j2.ConnectionID == "conn-1" {
		t.Fatalf("second rotation: %+v, %v; want it waiting (no live agent), never sent to the marked conn-1", j2, err)
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

// TestAgentTimeoutSweeperAsksAgain: the agent never answers; after the
// deadline the sweeper re-asks with fresh parameters, and after
// MaxAttempts it fails the job with a reason.
func TestAgentTimeoutSweeperAsksAgain(t *testing.T) {
	g := uniq("sweep")
	h := newHarness(t, symGroup(g, "alias-swap"))
	h.eng.MaxAttempts = 1
	j, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	h.loop.Take() // lost
	emu.Advance(10 * time.Minute)
	retried, failed, err := h.eng.Sweep(h.ctx)
	if err != nil || retried != 1 || failed != 0 {
		t.Fatalf("first sweep: retried %d failed %d err %v", retried, failed, err)
	}
	if got := h.job(j.ID); got.State != store.StateRequested || got.RequestID == j.RequestID {
		t.Fatalf("after sweep: %s request %s (was %s)", got.State, got.RequestID, j.RequestID)
	}
	h.loop.Take() // lost again
	emu.Advance(10 * time.Minute)
	if _, failed, err = h.eng.Sweep(h.ctx); err != nil || failed != 1 {
		t.Fatalf("second sweep: failed %d err %v", failed, err)
	}
	final := h.job(j.ID)
	h.requireState(final, store.StateFailed)
	if !strings.Contains(final.Reason, "deadline exceeded") {
		t.Fatalf("reason %q", final.Reason)
	}
	d, err := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(final.KeyARN)})
	if err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Fatalf("key of the failed job: %v %v, want PendingDeletion (not left in PendingImport)", d.KeyMetadata.KeyState, err)
	}
}

var _ = keyspec.SymmetricDefault
