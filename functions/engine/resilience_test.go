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
	// The pool spreads over equally loaded agents at random: rotate until
	// a request was tried on the gone conn-1 (each answers on conn-2).
	var c *store.Connection
	var err error
	for i := 0; i < 12; i++ {
		j := h.rotate(g, fmt.Sprintf("t%d", i))
		h.requireState(j, store.StateSucceeded)
		if j.ConnectionID != "conn-2" {
			t.Fatalf("answered on %s, want conn-2", j.ConnectionID)
		}
		if c, err = h.st.GetConnection(h.ctx, "conn-1"); err == nil && !c.GoneAt.IsZero() {
			break
		}
	}
	// Marked, not forgotten: a spurious Gone must not make the control plane
	// lose a live agent ($disconnect deletes dead ones; a heartbeat clears
	// the mark). Marked connections get no further requests.
	if err != nil || c.GoneAt.IsZero() {
		t.Fatalf("gone connection: %+v, %v; want it kept and marked after a request tried it", c, err)
	}
	h.loop.SetGone("conn-2")
	j2, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "second"})
	if !errors.Is(err, engine.ErrNoAgent) || j2 == nil || j2.State.Terminal() || j2.ConnectionID == "conn-1" {
		t.Fatalf("second rotation: %+v, %v; want it waiting (no live agent), never sent to the marked conn-1", j2, err)
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
