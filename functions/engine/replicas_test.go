package engine_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/kmsregions"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// faultIn injects errType on op for requests that name region (a
// replica's ARN).
func faultIn(region, op, errType, msg string) func() {
	f := kmsemu.FaultFunc(func(o string, req []byte) *kmsemu.FaultAction {
		if o == op && strings.Contains(string(req), ":"+region+":") {
			return &kmsemu.FaultAction{ErrorType: errType, Message: msg}
		}
		return nil
	})
	faultHook.Store(&f)
	return func() { faultHook.Store(nil) }
}

// TestKillRestoreAndSyncImportActOnEveryRegion: on a multi-Region group
// (primary us-east-1, replica eu-west-1) the kill switch deletes the
// material in both Regions (both keys PendingImport, ciphertexts of both
// Regions refused); restore re-imports the HSM key into both (a replica
// Region round, RegionsDone [eu-west-1]) and each Region's ciphertext
// decrypts in the other. A kill whose eu-west-1 call fails names the
// Region and leaves the generation live; the re-run finishes eu-west-1. A
// restore whose eu-west-1 import fails is FAILED naming eu-west-1 with
// the primary usable; the next restore brings eu-west-1 back. A sync
// import (the keepalive's re-import) goes through both Regions too.
func TestKillRestoreAndSyncImportActOnEveryRegion(t *testing.T) {
	name := uniq("mrk")
	h := newHarness(t, "  - name: "+name+"\n    key_spec: SYMMETRIC_DEFAULT\n    alias: alias/"+name+"\n    replicas: [eu-west-1]\n")
	h.eng.Regional = regionalClient
	euw1, _ := regionalClient("eu-west-1")
	j := h.rotate(name, "t1")
	h.requireState(j, store.StateSucceeded)
	primary, replica := j.KeyARN, kmsregions.ReplicaARN(j.KeyARN, "eu-west-1")
	regions := []struct {
		name string
		c    engine.KMSAPI
		arn  string
	}{{"us-east-1", h.kms, primary}, {"eu-west-1", euw1, replica}}
	msg := []byte("made before the kill")
	var cts [][]byte
	for _, r := range regions {
		ct, err := r.c.Encrypt(h.ctx, &kms.EncryptInput{KeyId: aws.String("alias/" + name), Plaintext: msg})
		if err != nil {
			t.Fatalf("encrypt in %s: %v", r.name, err)
		}
		cts = append(cts, ct.CiphertextBlob)
	}
	state := func(i int) kmstypes.KeyState {
		d, err := regions[i].c.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(regions[i].arn)})
		if err != nil {
			t.Fatal(err)
		}
		return d.KeyMetadata.KeyState
	}
	// Each Region's ciphertext decrypts in the other (want) or in neither.
	crossDecrypt := func(want bool) {
		t.Helper()
		for i, r := range regions {
			other := regions[1-i]
			out, err := other.c.Decrypt(h.ctx, &kms.DecryptInput{KeyId: aws.String(other.arn), CiphertextBlob: cts[i]})
			if ok := err == nil && bytes.Equal(out.Plaintext, msg); ok != want {
				t.Fatalf("a ciphertext made in %s decrypting in %s: %v, want ok=%v", r.name, other.name, err, want)
			}
		}
	}
	restore := func(id string) *store.Job {
		t.Helper()
		jobs, err := h.eng.Restore(h.ctx, name, id)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("restore %s: %d jobs, %v", id, len(jobs), err)
		}
		h.deliver()
		return h.job(jobs[0].ID)
	}

	n, err := h.eng.Kill(h.ctx, name)
	if err != nil || n != 1 {
		t.Fatalf("kill: %d, %v", n, err)
	}
	for i, r := range regions {
		if st := state(i); st != kmstypes.KeyStatePendingImport {
			t.Fatalf("%s key %s after kill, want PendingImport", r.name, st)
		}
	}
	crossDecrypt(false)
	r1 := restore("op-1")
	h.requireState(r1, store.StateSucceeded)
	if len(r1.RegionsDone) != 1 || r1.RegionsDone[0] != "eu-west-1" || r1.KeyARN != primary {
		t.Fatalf("restore: regions done %v, key %s", r1.RegionsDone, r1.KeyARN)
	}
	crossDecrypt(true)

	// A kill that fails in eu-west-1: named, the generation stays live;
	// the re-run deletes eu-west-1's material too.
	undo := faultIn("eu-west-1", "DeleteImportedKeyMaterial", "KMSInternalException", "injected: eu-west-1 down")
	n, err = h.eng.Kill(h.ctx, name)
	undo()
	if err == nil || !strings.Contains(err.Error(), "region eu-west-1") || n != 0 {
		t.Fatalf("kill with eu-west-1 failing: %d, %v", n, err)
	}
	if gens, _ := h.st.Generations(h.ctx, name); gens[0].State == store.GenKilled {
		t.Fatal("generation KILLED although eu-west-1 kept its material")
	}
	if a, b := state(0), state(1); a != kmstypes.KeyStatePendingImport || b != kmstypes.KeyStateEnabled {
		t.Fatalf("after the partial kill: us-east-1 %s, eu-west-1 %s", a, b)
	}
	if n, err = h.eng.Kill(h.ctx, name); err != nil || n != 1 || state(1) != kmstypes.KeyStatePendingImport {
		t.Fatalf("kill re-run: %d, %v, eu-west-1 %s", n, err, state(1))
	}

	// A restore that fails in eu-west-1: FAILED naming it, the primary usable.
	undo = faultIn("eu-west-1", "ImportKeyMaterial", "KMSInvalidStateException", "injected: eu-west-1 refuses")
	r2 := restore("op-2")
	undo()
	h.requireState(r2, store.StateFailed)
	if !strings.Contains(r2.Reason, "eu-west-1") {
		t.Fatalf("reason %q does not name eu-west-1", r2.Reason)
	}
	if out, err := h.kms.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: cts[1]}); err != nil || !bytes.Equal(out.Plaintext, msg) {
		t.Fatalf("the primary is not usable after eu-west-1 failed: %v", err)
	}
	if st := state(1); st != kmstypes.KeyStatePendingImport {
		t.Fatalf("eu-west-1 %s after its failed import", st)
	}
	h.requireState(restore("op-3"), store.StateSucceeded)
	crossDecrypt(true)

	// Sync import (what keepalive starts): both Regions again.
	jobs, err := h.eng.Reimport(h.ctx, name, "sync-1")
	if err != nil || len(jobs) != 1 {
		t.Fatalf("sync import: %d jobs, %v", len(jobs), err)
	}
	h.deliver()
	s := h.job(jobs[0].ID)
	h.requireState(s, store.StateSucceeded)
	if len(s.RegionsDone) != 1 {
		t.Fatalf("sync import regions done %v", s.RegionsDone)
	}
	crossDecrypt(true)
}

// TestFailedMultiRegionRotationLeavesTheCurrentKeyAndCleansUpInEveryRegion:
// a second rotation whose replica Region fails is FAILED naming
// eu-west-1; the group's current key keeps working in both Regions (the
// alias moved in neither), and the failed job's new primary and its
// replica are scheduled for deletion (the replica first: KMS deletes a
// primary only once it has no replicas), nothing left PendingImport.
func TestFailedMultiRegionRotationLeavesTheCurrentKeyAndCleansUpInEveryRegion(t *testing.T) {
	name := uniq("mrc")
	h := newHarness(t, "  - name: "+name+"\n    key_spec: SYMMETRIC_DEFAULT\n    alias: alias/"+name+"\n    replicas: [eu-west-1]\n")
	h.eng.Regional = regionalClient
	euw1, _ := regionalClient("eu-west-1")
	j1 := h.rotate(name, "t1")
	h.requireState(j1, store.StateSucceeded)
	undo := faultIn("eu-west-1", "ImportKeyMaterial", "KMSInvalidStateException", "injected: eu-west-1 refuses")
	j2 := h.rotate(name, "t2")
	undo()
	h.requireState(j2, store.StateFailed)
	if !strings.Contains(j2.Reason, "region eu-west-1") {
		t.Fatalf("reason %q", j2.Reason)
	}
	for _, c := range []engine.KMSAPI{h.kms, euw1} {
		d, err := c.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/" + name)})
		if err != nil || !strings.HasSuffix(aws.ToString(d.KeyMetadata.Arn), j1.KeyARN[strings.LastIndex(j1.KeyARN, "/"):]) {
			t.Fatalf("alias after the failed rotation: %v %v, want the first key", d, err)
		}
		if _, err := c.Encrypt(h.ctx, &kms.EncryptInput{KeyId: aws.String("alias/" + name), Plaintext: []byte("x")}); err != nil {
			t.Fatalf("the current key is not usable: %v", err)
		}
	}
	for _, r := range []struct {
		c   engine.KMSAPI
		arn string
	}{{euw1, kmsregions.ReplicaARN(j2.PrimaryKeyARN, "eu-west-1")}, {h.kms, j2.PrimaryKeyARN}} {
		d, err := r.c.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(r.arn)})
		if err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
			t.Errorf("%s after the failed job's cleanup: %v %v, want PendingDeletion", r.arn, d.KeyMetadata.KeyState, err)
		}
	}
}

// TestInPlaceRotationAcrossRegions: an in-place group with a replica. Its
// first rotation makes the multi-Region key (primary and replica); the
// second rotates it in place: NEW_KEY_MATERIAL on the primary, the same
// bytes as EXISTING_KEY_MATERIAL under the new KeyMaterialId in eu-west-1
// (its own wrap), RotateKeyOnDemand on the primary; the key ARN stays, the
// current material is the new one in both Regions, a ciphertext made
// before the rotation decrypts in both and one made after in eu-west-1
// decrypts in us-east-1.
func TestInPlaceRotationAcrossRegions(t *testing.T) {
	name := uniq("mri")
	h := newHarness(t, "  - name: "+name+"\n    key_spec: SYMMETRIC_DEFAULT\n    mode: in-place\n    alias: alias/"+name+"\n    replicas: [eu-west-1]\n")
	h.eng.Regional = regionalClient
	euw1, _ := regionalClient("eu-west-1")
	j1 := h.rotate(name, "t1")
	h.requireState(j1, store.StateSucceeded)
	before, err := h.kms.Encrypt(h.ctx, &kms.EncryptInput{KeyId: aws.String("alias/" + name), Plaintext: []byte("before")})
	if err != nil {
		t.Fatal(err)
	}
	j2 := h.rotate(name, "t2")
	h.requireState(j2, store.StateSucceeded)
	if j2.KeyARN != j1.KeyARN || j2.Mode != engine.ModeInPlace || j2.NewKey || len(j2.RegionsDone) != 1 || j2.RegionsDone[0] != "eu-west-1" {
		t.Fatalf("in-place job: key %s (first %s) mode %s new %v regions done %v", j2.KeyARN, j1.KeyARN, j2.Mode, j2.NewKey, j2.RegionsDone)
	}
	if j2.KeyMaterialID == "" || j2.KeyMaterialID == j1.KeyMaterialID {
		t.Fatalf("material %q after in-place rotation (first %q)", j2.KeyMaterialID, j1.KeyMaterialID)
	}
	replica := kmsregions.ReplicaARN(j1.KeyARN, "eu-west-1")
	for _, r := range []struct {
		c   engine.KMSAPI
		arn string
	}{{h.kms, j1.KeyARN}, {euw1, replica}} {
		d, err := r.c.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(r.arn)})
		if err != nil || aws.ToString(d.KeyMetadata.CurrentKeyMaterialId) != j2.KeyMaterialID || d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
			t.Fatalf("%s after the in-place rotation: %+v %v, want current material %s", r.arn, d, err, j2.KeyMaterialID)
		}
		out, err := r.c.Decrypt(h.ctx, &kms.DecryptInput{KeyId: aws.String(r.arn), CiphertextBlob: before.CiphertextBlob})
		if err != nil || string(out.Plaintext) != "before" {
			t.Fatalf("a ciphertext from before the rotation in %s: %v", r.arn, err)
		}
	}
	after, err := euw1.Encrypt(h.ctx, &kms.EncryptInput{KeyId: aws.String("alias/" + name), Plaintext: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := h.kms.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: after.CiphertextBlob}); err != nil || string(out.Plaintext) != "after" {
		t.Fatalf("eu-west-1's new ciphertext in us-east-1: %v", err)
	}
	gens, _ := h.st.Generations(h.ctx, name)
	if len(gens) != 2 || gens[1].InPlaceRotations != 1 || gens[1].KeyARN != j1.KeyARN {
		t.Fatalf("generations %+v", gens)
	}

	// Kill and restore the key's two materials in both Regions.
	if n, err := h.eng.Kill(h.ctx, name); err != nil || n != 2 {
		t.Fatalf("kill: %d %v", n, err)
	}
	for _, c := range []engine.KMSAPI{h.kms, euw1} {
		if _, err := c.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: before.CiphertextBlob}); err == nil {
			t.Fatal("a ciphertext decrypts after the kill")
		}
	}
	jobs, err := h.eng.Restore(h.ctx, name, "op-1")
	if err != nil || len(jobs) != 2 {
		t.Fatalf("restore: %d jobs, %v", len(jobs), err)
	}
	h.deliver()
	for _, rj := range jobs {
		h.requireState(h.job(rj.ID), store.StateSucceeded)
	}
	for _, c := range []engine.KMSAPI{h.kms, euw1} {
		for _, ct := range [][]byte{before.CiphertextBlob, after.CiphertextBlob} {
			if _, err := c.Decrypt(h.ctx, &kms.DecryptInput{CiphertextBlob: ct}); err != nil {
				t.Fatalf("after restore: %v", err)
			}
		}
	}
}

// TestInPlaceGroupWithASingleRegionKeyCannotGainReplicas: an in-place
// group whose key was made single-Region lists a replica: its next
// rotation FAILS before any import, saying what to do, and the key keeps
// its one material.
func TestInPlaceGroupWithASingleRegionKeyCannotGainReplicas(t *testing.T) {
	name := uniq("mrs")
	h := newHarness(t, "  - name: "+name+"\n    key_spec: SYMMETRIC_DEFAULT\n    mode: in-place\n    alias: alias/"+name+"\n")
	h.eng.Regional = regionalClient
	j1 := h.rotate(name, "t1")
	h.requireState(j1, store.StateSucceeded)
	g, _ := h.cfg.Group(name)
	g.Replicas = []string{"eu-west-1"}
	j2 := h.rotate(name, "t2")
	h.requireState(j2, store.StateFailed)
	if !strings.Contains(j2.Reason, "single-Region") || !strings.Contains(j2.Reason, "mode: alias-swap") {
		t.Fatalf("reason %q", j2.Reason)
	}
	rots, err := h.kms.ListKeyRotations(h.ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(j1.KeyARN), IncludeKeyMaterial: kmstypes.IncludeKeyMaterialAllKeyMaterial})
	if err != nil || len(rots.Rotations) != 1 {
		t.Fatalf("materials of %s: %+v %v, want the one", j1.KeyARN, rots, err)
	}
}
