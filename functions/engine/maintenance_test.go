package engine_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
)

// TestKeepaliveReimportsBeforeExpiry: material valid 30 days, margin 7
// days. After 24 days (emulator clock) keepalive re-imports every
// generation (the same HSM keys re-wrapped: KMS accepts EXISTING_KEY_MATERIAL
// only for identical bytes, which also proves KMS holds the HSM key); at
// day 40 the key is still Enabled (never PendingImport) and old data decrypts.
func TestKeepaliveReimportsBeforeExpiry(t *testing.T) {
	g := uniq("keep")
	h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: in-place\n    alias: alias/%s\n    material_expiration: 30d\n    reimport_margin: 7d\n", g, g))
	alias := "alias/" + g
	h.requireState(h.rotate(g, "r1"), store.StateSucceeded)
	old := h.useAlias(alias, "SYMMETRIC_DEFAULT")
	h.requireState(h.rotate(g, "r2"), store.StateSucceeded)

	jobs, err := h.eng.Keepalive(h.ctx)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("keepalive on fresh material started %d jobs (%v)", len(jobs), err)
	}
	emu.Advance(24 * 24 * time.Hour)
	jobs, err = h.eng.Keepalive(h.ctx)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("keepalive within the margin started %d jobs, want 2 (one per material): %v", len(jobs), err)
	}
	h.deliver()
	for _, j := range jobs {
		f := h.job(j.ID)
		h.requireState(f, store.StateSucceeded)
		if f.Kind != store.KindReimport {
			t.Fatalf("kind %s", f.Kind)
		}
	}
	// A second keepalive run in the same window starts nothing new.
	if again, _ := h.eng.Keepalive(h.ctx); len(again) != 0 {
		for _, j := range again {
			if h.job(j.ID).CreatedAt.After(jobs[0].CreatedAt.Add(time.Hour)) {
				t.Fatalf("keepalive re-imported again right after re-arming")
			}
		}
	}
	emu.Advance(16 * 24 * time.Hour) // day 40: past the original ValidTo
	md := h.aliasTarget(alias)
	if md.KeyState != kmstypes.KeyStateEnabled {
		t.Fatalf("key state %s at day 40, want Enabled (re-armed before expiry)", md.KeyState)
	}
	h.checkBefore(old, "SYMMETRIC_DEFAULT")
}

// TestKillSwitchAndRestore: kill deletes the imported material of every
// key of the group (every key unusable), restore re-imports the HSM copies
// and ciphertexts from before the kill decrypt again.
func TestKillSwitchAndRestore(t *testing.T) {
	g := uniq("kill")
	h := newHarness(t, symGroup(g, "alias-swap"))
	alias := "alias/" + g
	j1 := h.rotate(g, "r1")
	c1 := h.useAlias(alias, "SYMMETRIC_DEFAULT")
	j2 := h.rotate(g, "r2")
	c2 := h.useAlias(alias, "SYMMETRIC_DEFAULT")
	h.requireState(j2, store.StateSucceeded)

	n, err := h.eng.Kill(h.ctx, g)
	if err != nil || n != 2 {
		t.Fatalf("kill: %d materials, %v", n, err)
	}
	for _, k := range []string{j1.KeyARN, j2.KeyARN} {
		d, err := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(k)})
		if err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStatePendingImport {
			t.Fatalf("key %s after kill: %v %v, want PendingImport", k, d.KeyMetadata.KeyState, err)
		}
	}
	for _, c := range []before{c1, c2} {
		if _, err := h.kms.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: c.ciphertext}); err == nil {
			t.Fatal("a ciphertext still decrypts after the kill switch")
		}
	}
	// Rotations are refused while killed.
	j, _, _ := h.eng.Start(h.ctx, engineTrigger(g, "while-killed"))
	h.requireState(h.job(j.ID), store.StateFailed)

	jobs, err := h.eng.Restore(h.ctx, g, "op-1")
	if err != nil || len(jobs) != 2 {
		t.Fatalf("restore: %d jobs, %v", len(jobs), err)
	}
	h.deliver()
	for _, j := range jobs {
		h.requireState(h.job(j.ID), store.StateSucceeded)
	}
	for _, c := range []before{c1, c2} {
		out, err := h.kms.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: c.ciphertext})
		if err != nil || !bytes.Equal(out.Plaintext, c.msg) {
			t.Fatalf("ciphertext from before the kill does not decrypt after restore: %v", err)
		}
	}
	gens, _ := h.st.Generations(h.ctx, g)
	if gens[0].State != store.GenPrevious || gens[1].State != store.GenCurrent {
		t.Fatalf("generation states after restore: %s %s", gens[0].State, gens[1].State)
	}
	if _, err := h.eng.Restore(h.ctx, g, "op-1"); err != nil {
		t.Fatal(err)
	}
}
