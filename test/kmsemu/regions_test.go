package kmsemu

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// regionClient is the SDK client of url signing for region.
func regionClient(url, region string) *kms.Client {
	return kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""), Retryer: aws.NopRetryer{}})
}

func importInto(t *testing.T, c *kms.Client, id string, spec keyspec.Spec, mat []byte, typ types.ImportType) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	leg := keyspec.Legal(spec)[0]
	w := wrapFor(t, c, id, spec, leg.Algorithm, leg.KeySpec, mat)
	return c.ImportKeyMaterial(context.Background(), &kms.ImportKeyMaterialInput{KeyId: &id, ImportToken: w.token,
		EncryptedKeyMaterial: w.blob, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire, ImportType: typ})
}

func materialStates(t *testing.T, c *kms.Client, id string) map[string]string {
	t.Helper()
	out, err := c.ListKeyRotations(context.Background(), &kms.ListKeyRotationsInput{KeyId: &id, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	if err != nil {
		t.Fatalf("ListKeyRotations: %v", err)
	}
	m := map[string]string{}
	for _, r := range out.Rotations {
		m[*r.KeyMaterialId] = string(r.KeyMaterialState) + "/" + string(r.ImportState)
	}
	return m
}

// TestRegionsAreSeparate: the region is the signing scope's; each region
// has its own keys; an unknown region is refused.
func TestRegionsAreSeparate(t *testing.T) {
	srv := startServer(t, Options{Region: "us-east-1"})
	use1, euw1 := regionClient(srv.URL(), "us-east-1"), regionClient(srv.URL(), "eu-west-1")
	ctx := context.Background()
	k := must[*kms.CreateKeyOutput](t)(use1.CreateKey(ctx, &kms.CreateKeyInput{}))
	if !strings.HasPrefix(*k.KeyMetadata.Arn, "arn:aws:kms:us-east-1:") || *k.KeyMetadata.MultiRegion {
		t.Fatalf("key %s multi-Region %v", *k.KeyMetadata.Arn, *k.KeyMetadata.MultiRegion)
	}
	_, err := euw1.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyMetadata.KeyId})
	wantCode(t, err, errNotFound)
	e := must[*kms.CreateKeyOutput](t)(euw1.CreateKey(ctx, &kms.CreateKeyInput{}))
	if !strings.HasPrefix(*e.KeyMetadata.Arn, "arn:aws:kms:eu-west-1:") {
		t.Fatalf("eu-west-1 key %s", *e.KeyMetadata.Arn)
	}
	_, err = regionClient(srv.URL(), "eu-west-9").ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, err, "InvalidSignatureException")
	if got := srv.Regions(); len(got) != 2 || got[0] != "us-east-1" || got[1] != "eu-west-1" {
		t.Fatalf("Regions() = %v", got)
	}
}

// TestMultiRegionImportedKey: a primary with imported material, its
// replica, the replica material rules, and cross-region use.
func TestMultiRegionImportedKey(t *testing.T) {
	srv := startServer(t, Options{Region: "us-east-1", RotationDelay: -1})
	use1, euw1 := regionClient(srv.URL(), "us-east-1"), regionClient(srv.URL(), "eu-west-1")
	ctx := context.Background()
	spec := keyspec.SymmetricDefault
	p := must[*kms.CreateKeyOutput](t)(use1.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, MultiRegion: aws.Bool(true)}))
	id := *p.KeyMetadata.KeyId
	if !strings.HasPrefix(id, "mrk-") || len(id) != 36 || !*p.KeyMetadata.MultiRegion ||
		p.KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypePrimary {
		t.Fatalf("primary %s %+v", id, p.KeyMetadata.MultiRegionConfiguration)
	}
	mat := newMaterial(t, spec)
	must[*kms.ImportKeyMaterialOutput](t)(importInto(t, use1, id, spec, mat, ""))

	// Bad replications.
	_, err := use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-east-1")})
	wantCode(t, err, errValidation)
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("cn-north-1")})
	wantCode(t, err, errValidation)
	single := must[*kms.CreateKeyOutput](t)(use1.CreateKey(ctx, &kms.CreateKeyInput{}))
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: single.KeyMetadata.KeyId, ReplicaRegion: aws.String("eu-west-1")})
	wantCode(t, err, errUnsupported)

	r := must[*kms.ReplicateKeyOutput](t)(use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("eu-west-1")}))
	md := r.ReplicaKeyMetadata
	if *md.KeyId != id || *md.Arn != "arn:aws:kms:eu-west-1:"+testAccount+":key/"+id || md.KeyState != types.KeyStatePendingImport ||
		md.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypeReplica || *md.MultiRegionConfiguration.PrimaryKey.Region != "us-east-1" {
		t.Fatalf("replica %s %s %+v", *md.Arn, md.KeyState, md.MultiRegionConfiguration)
	}
	_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("eu-west-1")})
	wantCode(t, err, errAlreadyExists)
	_, err = euw1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")})
	wantCode(t, err, errUnsupported)
	pd := describe(t, use1, id).MultiRegionConfiguration
	if len(pd.ReplicaKeys) != 1 || *pd.ReplicaKeys[0].Region != "eu-west-1" || *pd.ReplicaKeys[0].Arn != *md.Arn {
		t.Fatalf("primary's replicas %+v", pd.ReplicaKeys)
	}

	// The replica takes only the primary's material, and its own token.
	_, err = importInto(t, euw1, id, spec, newMaterial(t, spec), "")
	wantCode(t, err, errIncorrectMat)
	leg := keyspec.Legal(spec)[0]
	wPrimary := wrapFor(t, use1, id, spec, leg.Algorithm, leg.KeySpec, mat)
	_, err = euw1.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &id, ImportToken: wPrimary.token, EncryptedKeyMaterial: wPrimary.blob,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantCode(t, err, errInvalidToken)
	must[*kms.ImportKeyMaterialOutput](t)(importInto(t, euw1, id, spec, mat, types.ImportTypeExistingKeyMaterial))
	if st := describe(t, euw1, id).KeyState; st != types.KeyStateEnabled {
		t.Fatalf("replica after import: %s", st)
	}

	// A ciphertext of one region decrypts in the other.
	ct := must[*kms.EncryptOutput](t)(use1.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("across")}))
	pt := must[*kms.DecryptOutput](t)(euw1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}))
	if string(pt.Plaintext) != "across" || !strings.Contains(*pt.KeyId, "eu-west-1") {
		t.Fatalf("decrypt in eu-west-1: %q by %s", pt.Plaintext, *pt.KeyId)
	}

	// In-place rotation across regions.
	next := newMaterial(t, spec)
	_, err = importInto(t, euw1, id, spec, next, types.ImportTypeNewKeyMaterial)
	wantCode(t, err, errUnsupported)
	nk := must[*kms.ImportKeyMaterialOutput](t)(importInto(t, use1, id, spec, next, types.ImportTypeNewKeyMaterial))
	nid := *nk.KeyMaterialId
	if st := materialStates(t, use1, id)[nid]; st != matPendingMR+"/IMPORTED" {
		t.Fatalf("primary's new material: %s", st)
	}
	_, err = use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, err, errInvalidState)
	_, err = euw1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id})
	wantCode(t, err, errUnsupported)
	rk := must[*kms.ImportKeyMaterialOutput](t)(importInto(t, euw1, id, spec, next, types.ImportTypeExistingKeyMaterial))
	if *rk.KeyMaterialId != nid {
		t.Fatalf("replica material id %s, primary's %s", *rk.KeyMaterialId, nid)
	}
	if st := materialStates(t, use1, id)[nid]; st != matPendingRotation+"/IMPORTED" {
		t.Fatalf("primary's new material once every replica has it: %s", st)
	}
	must[*kms.RotateKeyOnDemandOutput](t)(use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &id}))
	pmd, rmd := describe(t, use1, id), describe(t, euw1, id)
	if *pmd.CurrentKeyMaterialId != nid || *rmd.CurrentKeyMaterialId != nid {
		t.Fatalf("current after rotation: primary %s replica %s, want %s", *pmd.CurrentKeyMaterialId, *rmd.CurrentKeyMaterialId, nid)
	}
	ct2 := must[*kms.EncryptOutput](t)(euw1.Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte("back")}))
	for _, blob := range [][]byte{ct.CiphertextBlob, ct2.CiphertextBlob} {
		must[*kms.DecryptOutput](t)(use1.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob}))
	}

	// Key states are independent: the replica's kill leaves the primary.
	must[*kms.DeleteImportedKeyMaterialOutput](t)(euw1.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: &id}))
	if ps, rs := describe(t, use1, id).KeyState, describe(t, euw1, id).KeyState; ps != types.KeyStateEnabled || rs != types.KeyStatePendingImport {
		t.Fatalf("after the replica's kill: primary %s replica %s", ps, rs)
	}
	must[*kms.ImportKeyMaterialOutput](t)(importInto(t, euw1, id, spec, next, types.ImportTypeExistingKeyMaterial))
	if rs := describe(t, euw1, id).KeyState; rs != types.KeyStateEnabled {
		t.Fatalf("replica restored: %s", rs)
	}

	// Deleting the primary's pending material deletes the replicas' copies.
	third := newMaterial(t, spec)
	tk := must[*kms.ImportKeyMaterialOutput](t)(importInto(t, use1, id, spec, third, types.ImportTypeNewKeyMaterial))
	must[*kms.ImportKeyMaterialOutput](t)(importInto(t, euw1, id, spec, third, types.ImportTypeExistingKeyMaterial))
	must[*kms.DeleteImportedKeyMaterialOutput](t)(use1.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: &id, KeyMaterialId: tk.KeyMaterialId}))
	if _, ok := materialStates(t, euw1, id)[*tk.KeyMaterialId]; ok {
		t.Fatal("the replica kept the pending material the primary deleted")
	}

	// The primary cannot be scheduled for deletion before its replicas.
	_, err = use1.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: aws.Int32(7)})
	wantCode(t, err, errInvalidState)

	facts, ok := srv.KeyFacts(*md.Arn)
	if !ok || facts.MultiRegion != "true" || facts.ARN != *md.Arn {
		t.Fatalf("KeyFacts(replica) = %+v %v", facts, ok)
	}
	var n int
	for _, m := range srv.ImportedMaterials() {
		if m.KeyID == id && bytes.Equal(m.Material, next) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("the rotated material is held in %d regions, want 2", n)
	}
}

// TestMultiRegionAsymmetricSignsAcrossRegions: a signature made in one
// region verifies with the other's public key; asymmetric keys take no
// ImportType.
func TestMultiRegionAsymmetricSignsAcrossRegions(t *testing.T) {
	srv := startServer(t, Options{Region: "us-east-1", ReplicaCreating: 0})
	use1, euw1 := regionClient(srv.URL(), "us-east-1"), regionClient(srv.URL(), "eu-west-1")
	ctx := context.Background()
	spec := keyspec.ECCNISTP256
	p := must[*kms.CreateKeyOutput](t)(use1.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal, MultiRegion: aws.Bool(true),
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify}))
	id := *p.KeyMetadata.KeyId
	must[*kms.ReplicateKeyOutput](t)(use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("eu-west-1")}))
	mat := newMaterial(t, spec)
	// The replica was made before the primary had material: still only the primary's.
	_, err := importInto(t, euw1, id, spec, mat, "")
	wantCode(t, err, errIncorrectMat)
	must[*kms.ImportKeyMaterialOutput](t)(importInto(t, use1, id, spec, mat, ""))
	must[*kms.ImportKeyMaterialOutput](t)(importInto(t, euw1, id, spec, mat, ""))
	sig := must[*kms.SignOutput](t)(use1.Sign(ctx, &kms.SignInput{KeyId: &id, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}))
	v := must[*kms.VerifyOutput](t)(euw1.Verify(ctx, &kms.VerifyInput{KeyId: &id, Message: []byte("m"), Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256}))
	if !v.SignatureValid {
		t.Fatal("signature of us-east-1 does not verify in eu-west-1")
	}
	a := must[*kms.GetPublicKeyOutput](t)(use1.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &id}))
	b := must[*kms.GetPublicKeyOutput](t)(euw1.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &id}))
	if !bytes.Equal(a.PublicKey, b.PublicKey) {
		t.Fatal("public keys differ between regions")
	}
}

// TestReplicaIsCreatingAtFirst: ReplicaCreating holds a new replica in the
// Creating state on the emulator clock.
func TestReplicaIsCreatingAtFirst(t *testing.T) {
	srv := startServer(t, Options{Region: "us-east-1", ReplicaCreating: 5e9})
	use1, euw1 := regionClient(srv.URL(), "us-east-1"), regionClient(srv.URL(), "eu-west-1")
	ctx := context.Background()
	p := must[*kms.CreateKeyOutput](t)(use1.CreateKey(ctx, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}))
	r := must[*kms.ReplicateKeyOutput](t)(use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: p.KeyMetadata.KeyId, ReplicaRegion: aws.String("eu-west-1")}))
	if r.ReplicaKeyMetadata.KeyState != types.KeyStateCreating {
		t.Fatalf("new replica %s", r.ReplicaKeyMetadata.KeyState)
	}
	_, err := euw1.Encrypt(ctx, &kms.EncryptInput{KeyId: p.KeyMetadata.KeyId, Plaintext: []byte("x")})
	wantCode(t, err, errInvalidState)
	srv.Advance(5e9)
	if st := describe(t, euw1, *p.KeyMetadata.KeyId).KeyState; st != types.KeyStateEnabled {
		t.Fatalf("replica of an AWS_KMS key after Creating: %s", st)
	}
	must[*kms.EncryptOutput](t)(euw1.Encrypt(ctx, &kms.EncryptInput{KeyId: p.KeyMetadata.KeyId, Plaintext: []byte("x")}))
}
