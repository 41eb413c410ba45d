package engine_test

import (
	"bytes"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
)

// TestKillSwitchAndRestoreInPlaceKeyWithSeveralMaterials: one in-place key
// holding three materials (three generations). The kill switch deletes
// every material (the key is PendingImport, no ciphertext decrypts);
// restore re-imports each HSM copy under its KeyMaterialId, after which
// ciphertexts of every generation decrypt and the current material is the
// newest again.
func TestKillSwitchAndRestoreInPlaceKeyWithSeveralMaterials(t *testing.T) {
	g := uniq("killip")
	h := newHarness(t, symGroup(g, "in-place"))
	alias := "alias/" + g
	var jobs []*store.Job
	var data []before
	for _, trig := range []string{"r1", "r2", "r3"} {
		j := h.rotate(g, trig)
		h.requireState(j, store.StateSucceeded)
		jobs = append(jobs, j)
		data = append(data, h.useAlias(alias, "SYMMETRIC_DEFAULT"))
	}
	key := jobs[0].KeyARN
	for _, j := range jobs {
		if j.KeyARN != key {
			t.Fatalf("in-place rotations used keys %s and %s", key, j.KeyARN)
		}
	}
	n, err := h.eng.Kill(h.ctx, g)
	if err != nil || n != 3 {
		t.Fatalf("kill: %d materials, %v; want 3", n, err)
	}
	if md := h.aliasTarget(alias); md.KeyState != kmstypes.KeyStatePendingImport {
		t.Fatalf("key after kill is %s, want PendingImport", md.KeyState)
	}
	for i, d := range data {
		if _, err := h.kms.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: d.ciphertext}); err == nil {
			t.Fatalf("ciphertext of generation %d still decrypts after the kill switch", i+1)
		}
	}
	restored, err := h.eng.Restore(h.ctx, g, "op-1")
	if err != nil || len(restored) != 3 {
		t.Fatalf("restore: %d jobs, %v; want 3", len(restored), err)
	}
	h.deliver()
	for _, j := range restored {
		h.requireState(h.job(j.ID), store.StateSucceeded)
	}
	for i, d := range data {
		out, err := h.kms.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: d.ciphertext})
		if err != nil || !bytes.Equal(out.Plaintext, d.msg) {
			t.Fatalf("ciphertext of generation %d does not decrypt after restore: %v", i+1, err)
		}
	}
	md := h.aliasTarget(alias)
	if md.KeyState != kmstypes.KeyStateEnabled || aws.ToString(md.CurrentKeyMaterialId) != jobs[2].KeyMaterialID {
		t.Fatalf("after restore: %s, current material %s; want Enabled on %s", md.KeyState, aws.ToString(md.CurrentKeyMaterialId), jobs[2].KeyMaterialID)
	}
	gens, err := h.st.Generations(h.ctx, g)
	if err != nil || len(gens) != 3 || gens[2].State != store.GenCurrent || gens[0].State != store.GenPrevious || gens[1].State != store.GenPrevious {
		t.Fatalf("generations after restore: %+v, %v", gens, err)
	}
}
