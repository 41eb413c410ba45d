package engine_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"sync/atomic"
	"testing"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestInPlaceNeverAdoptsAnotherJobsPendingMaterial: a failed in-place job
// whose own cleanup also failed leaves its NEW_KEY_MATERIAL in
// PENDING_ROTATION. The next job must not take that material for its own
// (KMS answers its import with ConflictException): it removes the leftover
// before it imports, and the generation it records carries KMS material
// byte-identical to its own HSM key. (Found by the soak: "KMS material on
// <key> differs from HSM key" after a cleanup lost to an injected fault.)
func TestInPlaceNeverAdoptsAnotherJobsPendingMaterial(t *testing.T) {
	g := uniq("foreign")
	h := newHarness(t, symGroup(g, "in-place"))
	h.requireState(h.rotate(g, "r1"), store.StateSucceeded)

	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		switch op {
		case "RotateKeyOnDemand":
			return &kmsemu.FaultAction{ErrorType: "LimitExceededException", Message: "injected: rotation cap"}
		case "DeleteImportedKeyMaterial":
			return &kmsemu.FaultAction{ErrorType: "KMSInternalException", Message: "injected: cleanup lost"}
		}
		return nil
	})
	faultHook.Store(&f)
	j2 := h.rotate(g, "r2")
	faultHook.Store(nil)
	h.requireState(j2, store.StateFailed)
	if j2.KeyMaterialID == "" || materialState(j2.KeyARN, j2.KeyMaterialID) != "PENDING_ROTATION" {
		t.Fatalf("setup: the failed job's material %q should still be pending (state %q)", j2.KeyMaterialID, materialState(j2.KeyARN, j2.KeyMaterialID))
	}

	j3 := h.rotate(g, "r3")
	h.requireState(j3, store.StateSucceeded)
	if j3.KeyMaterialID == j2.KeyMaterialID {
		t.Fatalf("job %s adopted the failed job's material %s", j3.ID, j2.KeyMaterialID)
	}
	if st := materialState(j2.KeyARN, j2.KeyMaterialID); st != "" {
		t.Fatalf("the failed job's leftover material is still associated (%s)", st)
	}
	gen, err := h.st.Generation(h.ctx, g, j3.Generation)
	if err != nil {
		t.Fatal(err)
	}
	if gen.HSMLabel != j3.HSMLabel || gen.KeyMaterialID != j3.KeyMaterialID {
		t.Fatalf("generation %d records %s/%s, job has %s/%s", gen.Generation, gen.HSMLabel, gen.KeyMaterialID, j3.HSMLabel, j3.KeyMaterialID)
	}
	h.requireSymmetricMaterialIsHSMKey(gen)
}

// materialState is the emulator's state of one material of a key ("" when
// it is not associated).
func materialState(keyARN, id string) string {
	for _, m := range emu.ImportedMaterials() {
		if m.KeyARN == keyARN && m.KeyMaterialID == id {
			return m.State
		}
	}
	return ""
}

// requireSymmetricMaterialIsHSMKey compares, byte for byte, the material
// KMS holds under the generation's KeyMaterialId with the HSM key of its
// label (re-wrapped under a fresh RSA key of the test's and unwrapped here).
func (h *harness) requireSymmetricMaterialIsHSMKey(gen *store.Generation) {
	h.t.Helper()
	var kmsMat []byte
	for _, m := range emu.ImportedMaterials() {
		if m.KeyARN == gen.KeyARN && m.KeyMaterialID == gen.KeyMaterialID {
			kmsMat = m.Material
		}
	}
	if kmsMat == nil {
		h.t.Fatalf("KMS holds no material %s on %s", gen.KeyMaterialID, gen.KeyARN)
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		h.t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	blob, err := theHSM.Wrap(h.ctx, gen.HSMLabel, der, keyspec.RSAESOAEPSHA1)
	if err != nil {
		h.t.Fatal(err)
	}
	hsmMat, err := wrapping.Unwrap(priv, keyspec.RSAESOAEPSHA1, blob)
	if err != nil {
		h.t.Fatal(err)
	}
	if !bytes.Equal(hsmMat, kmsMat) {
		h.t.Fatalf("generation %d: KMS material %s differs from HSM key %s", gen.Generation, gen.KeyMaterialID, gen.HSMLabel)
	}
}

// TestInPlaceImportAnswerLostAdoptsOwnMaterial: the in-place import takes
// effect but its answer is lost; the retry (the SDK's, or the resumed
// job's) meets IncorrectKeyMaterialException ("already associated") or
// ConflictException, and the job takes the pending material, which is its
// own: it succeeds and the recorded generation's KMS material is its HSM
// key. (Before, the job FAILED "refused the material" and left the pending
// material for the next job to adopt.)
func TestInPlaceImportAnswerLostAdoptsOwnMaterial(t *testing.T) {
	g := uniq("lostimport")
	h := newHarness(t, symGroup(g, "in-place"))
	h.requireState(h.rotate(g, "r1"), store.StateSucceeded)
	var dropped atomic.Bool
	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		if op == "ImportKeyMaterial" && dropped.CompareAndSwap(false, true) {
			return &kmsemu.FaultAction{DropResponse: true}
		}
		return nil
	})
	faultHook.Store(&f)
	j := h.rotate(g, "r2")
	faultHook.Store(nil)
	if !dropped.Load() {
		t.Fatal("setup: no import answer was dropped")
	}
	if j.State != store.StateSucceeded {
		// The SDK's own retry usually finishes the job; otherwise resume it.
		if _, err := h.eng.Resume(h.ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	j = h.job(j.ID)
	h.requireState(j, store.StateSucceeded)
	gen, err := h.st.Generation(h.ctx, g, j.Generation)
	if err != nil {
		t.Fatal(err)
	}
	h.requireSymmetricMaterialIsHSMKey(gen)
}
