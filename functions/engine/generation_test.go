package engine_test

import (
	"testing"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestFailedJobNeverLendsItsHSMLabel: a rotation that fails after the agent
// wrapped its HSM key leaves that label pinned (on the agent) to the failed
// job's KMS key. The next rotation must take a new generation number and
// label, or every later rotation of the group would be refused (found by
// the soak: "HSM key kf/payments-data/1 is pinned to ...").
func TestFailedJobNeverLendsItsHSMLabel(t *testing.T) {
	g := uniq("wedge")
	h := newHarness(t, symGroup(g, "alias-swap"))
	j1 := h.rotate(g, "r1")
	h.requireState(j1, store.StateSucceeded)

	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		if op == "ImportKeyMaterial" {
			return &kmsemu.FaultAction{ErrorType: "IncorrectKeyMaterialException", Message: "injected"}
		}
		return nil
	})
	faultHook.Store(&f)
	j2 := h.rotate(g, "r2")
	h.deliverErr()
	faultHook.Store(nil)
	j2 = h.job(j2.ID)
	h.requireState(j2, store.StateFailed)
	if j2.HSMLabel == "" {
		t.Fatal("the failed job never named an HSM key; the test does not exercise the wedge")
	}

	j3 := h.rotate(g, "r3")
	h.deliver()
	j3 = h.job(j3.ID)
	h.requireState(j3, store.StateSucceeded)
	if j3.HSMLabel == j2.HSMLabel || j3.Generation <= j2.Generation {
		t.Fatalf("next rotation reused generation %d / label %s of the failed job (got %d / %s)", j2.Generation, j2.HSMLabel, j3.Generation, j3.HSMLabel)
	}
	if j3.KeyARN == j2.KeyARN {
		t.Fatalf("next rotation reused the failed job's key %s", j2.KeyARN)
	}
}
