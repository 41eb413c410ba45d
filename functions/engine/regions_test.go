package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// regionalClient is the shared emulator's client of another Region (the
// emulator serves the Region the request is signed for).
func regionalClient(r string) (engine.KMSAPI, error) {
	c := kmsClient()
	return kms.New(c.Options(), func(o *kms.Options) { o.Region = r }), nil
}

// importFromEmulator imports into keyARN (through c) the material the
// emulator holds for the primary: the test's stand-in for the agent's
// per-Region wrap, with that Region's own import parameters.
func importFromEmulator(t *testing.T, c engine.KMSAPI, keyARN string, spec keyspec.Spec, primaryARN string) {
	t.Helper()
	ctx := context.Background()
	var mat []byte
	for _, m := range emu.ImportedMaterials() {
		if m.KeyARN == primaryARN && m.State == "CURRENT" {
			mat = m.Material
		}
	}
	if mat == nil {
		t.Fatalf("no current material of %s in the emulator", primaryARN)
	}
	leg := keyspec.Legal(spec)[0]
	p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &keyARN,
		WrappingAlgorithm: kmstypes.AlgorithmSpec(leg.Algorithm), WrappingKeySpec: kmstypes.WrappingKeySpec(leg.KeySpec)})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, err := wrapping.ParsePublicKey(p.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := wrapping.Wrap(nil, pub, spec, leg.Algorithm, mat)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &keyARN, ImportToken: p.ImportToken, EncryptedKeyMaterial: blob,
		ExpirationModel: kmstypes.ExpirationModelTypeKeyMaterialDoesNotExpire}); err != nil {
		t.Fatalf("import into %s: %v", keyARN, err)
	}
}

// TestMultiRegionGroupReplicatesAndVerifiesAcrossRegions: an alias-swap
// rotation of a group with replicas creates a multi-Region primary,
// replicates it, has the agent wrap the one HSM key again under the
// replica Region's wrapping key, imports it there, verifies every Region
// against the others and moves the alias in each Region; a second
// EnsureReplicas finds the replica; VerifyAcross names a Region that lost
// its material.
func TestMultiRegionGroupReplicatesAndVerifiesAcrossRegions(t *testing.T) {
	for _, tc := range []struct {
		spec  keyspec.Spec
		usage string
	}{
		{keyspec.SymmetricDefault, ""},
		{keyspec.ECCNISTP384, "    key_usage: SIGN_VERIFY\n"}, // P-256 is not wrappable on SoftHSM (TOKENS.md)
		{keyspec.HMAC256, ""},
	} {
		t.Run(string(tc.spec), func(t *testing.T) {
			name := uniq("mr")
			h := newHarness(t, "  - name: "+name+"\n    key_spec: "+string(tc.spec)+"\n"+tc.usage+"    alias: alias/"+name+"\n    replicas: [eu-west-1]\n")
			h.eng.Regional = regionalClient
			j := h.rotate(name, "t1")
			h.requireState(j, store.StateSucceeded)
			if !strings.Contains(j.KeyARN, ":us-east-1:") || !strings.Contains(j.KeyARN, ":key/mrk-") || len(j.RegionsDone) != 1 || j.RegionsDone[0] != "eu-west-1" {
				t.Fatalf("job key %s regions done %v", j.KeyARN, j.RegionsDone)
			}
			want := strings.Replace(j.KeyARN, ":us-east-1:", ":eu-west-1:", 1)
			euw1, _ := regionalClient("eu-west-1")
			d, err := euw1.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/" + name)})
			if err != nil || aws.ToString(d.KeyMetadata.Arn) != want || d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
				t.Fatalf("eu-west-1 alias: %+v %v", d, err)
			}
			if got := aws.ToString(h.aliasTarget("alias/" + name).Arn); got != j.KeyARN {
				t.Fatalf("us-east-1 alias on %s", got)
			}
			g, _ := h.cfg.Group(name)
			keys, err := h.eng.EnsureReplicas(h.ctx, g, j.KeyARN)
			if err != nil || len(keys) != 2 || keys[1] != (engine.RegionKey{Region: "eu-west-1", KeyARN: want}) {
				t.Fatalf("EnsureReplicas after the rotation: %+v %v", keys, err)
			}
			if err := h.eng.VerifyAcross(h.ctx, g, keys); err != nil {
				t.Fatalf("verification across regions: %v", err)
			}
			if _, err := euw1.DeleteImportedKeyMaterial(h.ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(want)}); err != nil {
				t.Fatal(err)
			}
			err = h.eng.VerifyAcross(h.ctx, g, keys)
			if err == nil || !strings.Contains(err.Error(), "region eu-west-1") {
				t.Fatalf("verification of a replica without material: %v", err)
			}
			importFromEmulator(t, euw1, want, tc.spec, j.KeyARN)
			if err := h.eng.VerifyAcross(h.ctx, g, keys); err != nil {
				t.Fatalf("verification after the replica's restore: %v", err)
			}
		})
	}
}

// TestReplicaRegionFailingFailsTheJobNamingIt: the replica Region refuses
// the import; the job FAILS naming eu-west-1, no alias moved in either
// Region, and the job's new key is cleaned up.
func TestReplicaRegionFailingFailsTheJobNamingIt(t *testing.T) {
	name := uniq("mrf")
	h := newHarness(t, "  - name: "+name+"\n    key_spec: SYMMETRIC_DEFAULT\n    alias: alias/"+name+"\n    replicas: [eu-west-1]\n")
	h.eng.Regional = regionalClient
	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		if op == "ImportKeyMaterial" && strings.Contains(string(req), ":eu-west-1:") {
			return &kmsemu.FaultAction{ErrorType: "KMSInvalidStateException", Message: "injected: eu-west-1 refuses"}
		}
		return nil
	})
	faultHook.Store(&f)
	defer faultHook.Store(nil)
	j := h.rotate(name, "t1")
	h.requireState(j, store.StateFailed)
	if !strings.Contains(j.Reason, "region eu-west-1") || !strings.Contains(j.Reason, "injected") {
		t.Fatalf("reason %q", j.Reason)
	}
	// The job's new key never got an alias: cleaned up like any failed
	// job's (TestFailedMultiRegionRotationLeavesTheCurrentKeyAndCleansUpInEveryRegion).
	if d, err := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(j.PrimaryKeyARN)}); err != nil || d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Fatalf("the failed job's primary: %v, want PendingDeletion", err)
	}
	if _, err := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/" + name)}); err == nil {
		t.Fatal("the alias moved although a Region failed")
	}
}

// TestSingleRegionKeyCannotGainReplicas: EnsureReplicas on a single-Region
// key is a failure that says what the operator can do; nothing is created.
func TestSingleRegionKeyCannotGainReplicas(t *testing.T) {
	name := uniq("sr")
	h := newHarness(t, "  - name: "+name+"\n    key_spec: SYMMETRIC_DEFAULT\n    alias: alias/"+name+"\n")
	h.eng.Regional = regionalClient
	j := h.rotate(name, "t1")
	h.requireState(j, store.StateSucceeded)
	g, _ := h.cfg.Group(name)
	mr := *g
	mr.Replicas = []string{"eu-west-1"}
	_, err := h.eng.EnsureReplicas(h.ctx, &mr, j.KeyARN)
	if err == nil || !strings.Contains(err.Error(), "single-Region") || !strings.Contains(err.Error(), "alias-swap rotation creates a new multi-Region key") {
		t.Fatalf("EnsureReplicas on a single-Region key: %v", err)
	}
	euw1, _ := regionalClient("eu-west-1")
	id := j.KeyARN[strings.LastIndex(j.KeyARN, "/")+1:]
	if _, err := euw1.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err == nil {
		t.Fatal("a key appeared in eu-west-1")
	}
}
