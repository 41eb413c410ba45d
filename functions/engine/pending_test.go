package engine_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestFailedInPlaceJobDeletesItsPendingMaterial: an in-place job whose
// RotateKeyOnDemand is refused fails after importing NEW_KEY_MATERIAL; the
// failure deletes exactly that PENDING_ROTATION material (by its
// KeyMaterialId), the current material stays, old data decrypts, and the
// next in-place rotation of the key succeeds.
func TestFailedInPlaceJobDeletesItsPendingMaterial(t *testing.T) {
	g := uniq("pend")
	h := newHarness(t, symGroup(g, "in-place"))
	alias := "alias/" + g
	j1 := h.rotate(g, "r1")
	h.requireState(j1, store.StateSucceeded)
	old := h.useAlias(alias, "SYMMETRIC_DEFAULT")

	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		if op == "RotateKeyOnDemand" {
			return &kmsemu.FaultAction{ErrorType: "LimitExceededException", Message: "injected: rotation cap"}
		}
		return nil
	})
	faultHook.Store(&f)
	j2 := h.rotate(g, "r2")
	faultHook.Store(nil)
	h.requireState(j2, store.StateFailed)
	if j2.KeyMaterialID == "" || !strings.Contains(j2.Reason, "cap") {
		t.Fatalf("failed job: material %q reason %q; want an imported material and the cap reason", j2.KeyMaterialID, j2.Reason)
	}
	rot, err := h.kms.ListKeyRotations(h.ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(j1.KeyARN), IncludeKeyMaterial: kmstypes.IncludeKeyMaterialAllKeyMaterial})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rot.Rotations {
		if r.KeyMaterialState == kmstypes.KeyMaterialStatePendingRotation || aws.ToString(r.KeyMaterialId) == j2.KeyMaterialID {
			t.Fatalf("material %s (%s) of the failed job still associated", aws.ToString(r.KeyMaterialId), r.KeyMaterialState)
		}
	}
	md := h.aliasTarget(alias)
	if md.KeyState != kmstypes.KeyStateEnabled || aws.ToString(md.CurrentKeyMaterialId) != j1.KeyMaterialID {
		t.Fatalf("key %s current material %s, want Enabled on %s", md.KeyState, aws.ToString(md.CurrentKeyMaterialId), j1.KeyMaterialID)
	}
	h.checkBefore(old, "SYMMETRIC_DEFAULT")
	h.requireState(h.rotate(g, "r3"), store.StateSucceeded)
}
