package kmsemu

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func importNew(t *testing.T, c *kms.Client, key string, mat []byte, mut func(*kms.ImportKeyMaterialInput)) (*kms.ImportKeyMaterialOutput, error) {
	t.Helper()
	w := wrapFor(t, c, key, keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	in := &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire, ImportType: types.ImportTypeNewKeyMaterial}
	if mut != nil {
		mut(in)
	}
	return c.ImportKeyMaterial(context.Background(), in)
}

// TestInPlaceRotation walks the in-place rotation of an imported symmetric
// key: NEW_KEY_MATERIAL -> RotateKeyOnDemand (asynchronous, visible in
// GetKeyRotationStatus) -> ListKeyRotations / CurrentKeyMaterialId, with old
// ciphertexts still decrypting.
func TestInPlaceRotation(t *testing.T) {
	srv := startServer(t, Options{RotationDelay: time.Minute})
	c := newClient(srv.URL())
	ctx := context.Background()
	key, _ := importedKey(t, c, keyspec.SymmetricDefault, keyspec.EncryptDecrypt)
	first := *describe(t, c, key).CurrentKeyMaterialId
	old := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: &key, Plaintext: []byte("before")}))

	_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &key})
	wantCode(t, err, errInvalidState) // no PENDING_ROTATION material yet

	out := must[*kms.ImportKeyMaterialOutput](t)(importNew(t, c, key, newMaterial(t, keyspec.SymmetricDefault), func(i *kms.ImportKeyMaterialInput) {
		i.KeyMaterialDescription = strPtr("generation 2")
	}))
	second := *out.KeyMaterialId
	_, err = importNew(t, c, key, newMaterial(t, keyspec.SymmetricDefault), nil)
	wantCode(t, err, errConflict) // one PENDING_ROTATION at a time

	all := must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &key, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial}))
	if len(all.Rotations) != 2 || all.Rotations[1].KeyMaterialState != types.KeyMaterialStatePendingRotation || *all.Rotations[1].KeyMaterialDescription != "generation 2" {
		t.Fatalf("ALL_KEY_MATERIAL before rotation: %+v", all.Rotations)
	}

	must[*kms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &key}))
	st := must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: &key}))
	if st.OnDemandRotationStartDate == nil {
		t.Fatal("OnDemandRotationStartDate not set while rotating")
	}
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &key})
	wantCode(t, err, errConflict)
	if cur := *describe(t, c, key).CurrentKeyMaterialId; cur != first {
		t.Fatalf("current material changed before the rotation completed")
	}

	srv.Advance(time.Minute)
	st = must[*kms.GetKeyRotationStatusOutput](t)(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: &key}))
	if st.OnDemandRotationStartDate != nil {
		t.Fatal("OnDemandRotationStartDate still set after completion")
	}
	if cur := *describe(t, c, key).CurrentKeyMaterialId; cur != second {
		t.Fatalf("CurrentKeyMaterialId %s, want %s", cur, second)
	}
	rot := must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &key}))
	if len(rot.Rotations) != 1 || *rot.Rotations[0].KeyMaterialId != second || rot.Rotations[0].RotationType != types.RotationTypeOnDemand || rot.Rotations[0].RotationDate == nil {
		t.Fatalf("ROTATIONS_ONLY: %+v", rot.Rotations)
	}
	all = must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &key, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial}))
	states := map[string]types.KeyMaterialState{}
	for _, r := range all.Rotations {
		states[*r.KeyMaterialId] = r.KeyMaterialState
		if r.ImportState != types.ImportStateImported {
			t.Errorf("import state %s", r.ImportState)
		}
	}
	if states[first] != types.KeyMaterialStateNonCurrent || states[second] != types.KeyMaterialStateCurrent {
		t.Fatalf("material states %v", states)
	}
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: old.CiphertextBlob}))
	if string(dec.Plaintext) != "before" || *dec.KeyMaterialId != first {
		t.Fatalf("old ciphertext: %q under %s", dec.Plaintext, *dec.KeyMaterialId)
	}
	gdk := must[*kms.GenerateDataKeyOutput](t)(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &key, KeySpec: types.DataKeySpecAes256}))
	if *gdk.KeyMaterialId != second {
		t.Fatalf("new data key under %s, want %s", *gdk.KeyMaterialId, second)
	}

	// Paging.
	p1 := must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &key, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial, Limit: ptr32(1)}))
	if len(p1.Rotations) != 1 || !p1.Truncated || p1.NextMarker == nil {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := must[*kms.ListKeyRotationsOutput](t)(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &key, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial, Limit: ptr32(1), Marker: p1.NextMarker}))
	if len(p2.Rotations) != 1 || p2.Truncated || *p2.Rotations[0].KeyMaterialId == *p1.Rotations[0].KeyMaterialId {
		t.Fatalf("page 2: %+v", p2)
	}
	_, err = c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: &key, Marker: strPtr("bogus")})
	wantCode(t, err, errInvalidMarker)
}

func ptr32(v int32) *int32 { return &v }

// TestRotationCap: LimitExceededException after RotationCap rotations.
func TestRotationCap(t *testing.T) {
	srv := startServer(t, Options{RotationCap: 2, RotationDelay: -1})
	c := newClient(srv.URL())
	ctx := context.Background()
	key, _ := importedKey(t, c, keyspec.SymmetricDefault, keyspec.EncryptDecrypt)
	for i := 0; i < 3; i++ {
		must[*kms.ImportKeyMaterialOutput](t)(importNew(t, c, key, newMaterial(t, keyspec.SymmetricDefault), nil))
		_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &key})
		if i < 2 {
			wantCode(t, err, "")
		} else {
			wantCode(t, err, errLimitExceeded)
		}
	}
	// AWS_KMS keys rotate without an import and share the cap.
	k := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
	for i := 0; i < 3; i++ {
		_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: k.KeyMetadata.KeyId})
		if want := map[bool]string{true: "", false: errLimitExceeded}[i < 2]; errCode(err) != want {
			t.Fatalf("rotation %d: %v, want %q", i, err, want)
		}
	}
}

// TestRotationOnlyForSymmetricKeys covers the rotation operations on keys
// that cannot rotate.
func TestRotationOnlyForSymmetricKeys(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	hm := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}))
	_, err := c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: hm.KeyMetadata.KeyId})
	wantCode(t, err, errUnsupported)
	_, err = c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: hm.KeyMetadata.KeyId})
	wantCode(t, err, errUnsupported)
	pending := createExternal(t, c, keyspec.SymmetricDefault, keyspec.EncryptDecrypt)
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &pending})
	wantCode(t, err, errInvalidState)
}

// TestExpiryOfNonCurrentMaterialPutsKeyInPendingImport: after an in-place
// rotation, the expiry of the OLD material alone makes the key unusable
// until that material is re-imported (EXISTING_KEY_MATERIAL + KeyMaterialId).
func TestExpiryOfNonCurrentMaterialPutsKeyInPendingImport(t *testing.T) {
	srv := startServer(t, Options{RotationDelay: -1})
	c := newClient(srv.URL())
	ctx := context.Background()
	spec := keyspec.SymmetricDefault
	key := createExternal(t, c, spec, keyspec.EncryptDecrypt)
	mat1 := newMaterial(t, spec)
	out1 := must[*kms.ImportKeyMaterialOutput](t)(importNew(t, c, key, mat1, func(i *kms.ImportKeyMaterialInput) {
		i.ExpirationModel, i.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, inDays(srv, 5)
	}))
	must[*kms.ImportKeyMaterialOutput](t)(importNew(t, c, key, newMaterial(t, spec), nil))
	must[*kms.RotateKeyOnDemandOutput](t)(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: &key}))
	if md := describe(t, c, key); md.KeyState != types.KeyStateEnabled || md.ExpirationModel != types.ExpirationModelTypeKeyMaterialDoesNotExpire {
		t.Fatalf("after rotation: %s %s", md.KeyState, md.ExpirationModel)
	}
	srv.Advance(6 * 24 * time.Hour)
	if st := describe(t, c, key).KeyState; st != types.KeyStatePendingImport {
		t.Fatalf("state after the old material expired: %s", st)
	}
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: &key, Plaintext: []byte("x")})
	wantCode(t, err, errInvalidState)
	must[*kms.ImportKeyMaterialOutput](t)(importNew(t, c, key, mat1, func(i *kms.ImportKeyMaterialInput) {
		i.ImportType, i.KeyMaterialId = types.ImportTypeExistingKeyMaterial, out1.KeyMaterialId
	}))
	if st := describe(t, c, key).KeyState; st != types.KeyStateEnabled {
		t.Fatalf("state after re-importing the old material: %s", st)
	}
}
