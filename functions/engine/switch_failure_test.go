package engine_test

import (
	"testing"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
)

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
