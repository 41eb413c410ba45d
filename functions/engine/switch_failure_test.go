package engine_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
)

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

// TestThrottledSigningIsNotAJobFailure: the control plane signs each
// wrap_request with KMS; when kms:Sign is throttled the job waits and
// retries (it is not FAILED), and completes once signing works.
func TestThrottledSigningIsNotAJobFailure(t *testing.T) {
	g := uniq("signthrottle")
	h := newHarness(t, symGroup(g, "alias-swap"))
	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		if op == "Sign" {
			return &kmsemu.FaultAction{ErrorType: "ThrottlingException", Message: "Rate exceeded"}
		}
		return nil
	})
	faultHook.Store(&f)
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "r1"))
	faultHook.Store(nil)
	if err == nil {
		t.Fatal("a throttled kms:Sign went unnoticed")
	}
	j = h.job(j.ID)
	if j.State.Terminal() {
		t.Fatalf("job %s after a throttled kms:Sign: %q", j.State, j.Reason)
	}
	if _, err := h.eng.Resume(h.ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	h.deliver()
	h.requireState(h.job(j.ID), store.StateSucceeded)
}
