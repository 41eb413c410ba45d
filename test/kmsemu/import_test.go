package kmsemu

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// TestImportKeyMaterialValidation covers the ImportKeyMaterial rules, each
// case on a fresh SYMMETRIC_DEFAULT EXTERNAL key.
func TestImportKeyMaterialValidation(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	spec, alg, wks := keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA1, keyspec.WrapRSA2048
	now := srv.Now()
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	whole := func(d time.Duration) *time.Time { v := now.Add(d).Truncate(time.Second); return &v }
	awsKey := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
	other := createExternal(t, c, spec, keyspec.EncryptDecrypt)
	otherW := wrapFor(t, c, other, spec, alg, wks, newMaterial(t, spec))
	type in = kms.ImportKeyMaterialInput
	tests := []struct {
		name     string
		material []byte // nil: 32 fresh bytes
		mutate   func(*in)
		want     string
	}{
		{"DOES_NOT_EXPIRE", nil, func(i *in) {}, ""},
		{"EXPIRES with whole-second ValidTo", nil, func(i *in) {
			i.ExpirationModel, i.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, whole(48*time.Hour)
		}, ""},
		{"EXPIRES with fractional ValidTo", nil, func(i *in) {
			i.ExpirationModel, i.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, at(48*time.Hour+500*time.Millisecond)
		}, ""},
		{"ValidTo 364 days ahead", nil, func(i *in) {
			i.ExpirationModel, i.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, at(364*24*time.Hour)
		}, ""},
		{"ValidTo without ExpirationModel (defaults to EXPIRES)", nil, func(i *in) { i.ExpirationModel, i.ValidTo = "", at(time.Hour) }, ""},
		{"no ExpirationModel, no ValidTo", nil, func(i *in) { i.ExpirationModel = "" }, errValidation},
		{"EXPIRES without ValidTo", nil, func(i *in) { i.ExpirationModel = types.ExpirationModelTypeKeyMaterialExpires }, errValidation},
		{"ValidTo in the past", nil, func(i *in) {
			i.ExpirationModel, i.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, at(-time.Minute)
		}, errValidation},
		{"ValidTo 366 days ahead", nil, func(i *in) {
			i.ExpirationModel, i.ValidTo = types.ExpirationModelTypeKeyMaterialExpires, at(366*24*time.Hour)
		}, errValidation},
		{"DOES_NOT_EXPIRE with ValidTo", nil, func(i *in) { i.ValidTo = at(time.Hour) }, errValidation},
		{"unknown ExpirationModel", nil, func(i *in) { i.ExpirationModel = "SOMETIMES" }, errValidation},
		{"unknown ImportType", nil, func(i *in) { i.ImportType = "FRESH" }, errValidation},
		{"NEW_KEY_MATERIAL with KeyMaterialId", nil, func(i *in) { i.ImportType, i.KeyMaterialId = types.ImportTypeNewKeyMaterial, strPtr("ab") }, errValidation},
		{"explicit NEW_KEY_MATERIAL first import", nil, func(i *in) { i.ImportType = types.ImportTypeNewKeyMaterial }, ""},
		{"EXISTING_KEY_MATERIAL first import", nil, func(i *in) { i.ImportType = types.ImportTypeExistingKeyMaterial }, errIncorrectMat},
		{"garbage token", nil, func(i *in) { i.ImportToken = []byte("not a token") }, errInvalidToken},
		{"token of another key", nil, func(i *in) { i.ImportToken = otherW.token }, errInvalidToken},
		{"blob from another wrapping key", nil, func(i *in) { i.EncryptedKeyMaterial = otherW.blob }, errInvalidCipher},
		{"truncated blob", nil, func(i *in) { i.EncryptedKeyMaterial = i.EncryptedKeyMaterial[:100] }, errInvalidCipher},
		{"31-byte material", make([]byte, 31), func(i *in) {}, errIncorrectMat},
		{"AWS_KMS key", nil, func(i *in) { i.KeyId = awsKey.KeyMetadata.KeyId }, errUnsupported},
		{"alias instead of key id", nil, func(i *in) { i.KeyId = strPtr("alias/import-target") }, errNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := createExternal(t, c, spec, keyspec.EncryptDecrypt)
			if tc.name == "alias instead of key id" {
				must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: strPtr("alias/import-target"), TargetKeyId: &key}))
			}
			mat := tc.material
			if mat == nil {
				mat = newMaterial(t, spec)
			}
			w := wrapFor(t, c, key, spec, alg, wks, mat)
			input := &in{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
				ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}
			tc.mutate(input)
			_, err := c.ImportKeyMaterial(ctx, input)
			wantCode(t, err, tc.want)
			md := describe(t, c, key)
			wantState := types.KeyStatePendingImport
			if tc.want == "" {
				wantState = types.KeyStateEnabled
			}
			if md.KeyState != wantState {
				t.Errorf("state %s, want %s", md.KeyState, wantState)
			}
		})
	}
}

// TestImportOnAWSKMSKeyIsUnsupported: GetParametersForImport and
// DeleteImportedKeyMaterial need an EXTERNAL key.
func TestImportOnAWSKMSKeyIsUnsupported(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	k := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
	_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: k.KeyMetadata.KeyId,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048})
	wantCode(t, err, errUnsupported)
	_, err = c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: k.KeyMetadata.KeyId})
	wantCode(t, err, errUnsupported)
}

// TestImportTokenExpiresAfter24Hours: ParametersValidTo is 24 h ahead and an
// older token is ExpiredImportTokenException; fresh parameters work again.
func TestImportTokenExpiresAfter24Hours(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	spec := keyspec.SymmetricDefault
	key := createExternal(t, c, spec, keyspec.EncryptDecrypt)
	p := must[*kms.GetParametersForImportOutput](t)(c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &key,
		WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048}))
	if d := p.ParametersValidTo.Sub(srv.Now()); d < 23*time.Hour+59*time.Minute || d > 24*time.Hour {
		t.Fatalf("ParametersValidTo is %v ahead, want 24h", d)
	}
	mat := newMaterial(t, spec)
	w := wrapFor(t, c, key, spec, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	srv.Advance(24*time.Hour + time.Second)
	_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantCode(t, err, errExpiredToken)
	w = wrapFor(t, c, key, spec, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantCode(t, err, "")
}

// TestGetParametersForImportLegality: every illegal (spec, algorithm,
// wrapping key spec) of shared/keyspec is ValidationException, plus bad enums.
func TestGetParametersForImportLegality(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	for _, spec := range keyspec.All() {
		info := keyspec.MustLookup(spec)
		key := createExternal(t, c, spec, info.Usages[0])
		algs := append(keyspec.WrappingAlgorithms(), keyspec.RSAESPKCS1V15Rejected)
		for _, a := range algs {
			for _, w := range keyspec.WrappingKeySpecs() {
				if keyspec.CheckWrapping(spec, a, w) == nil {
					continue
				}
				_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &key,
					WrappingAlgorithm: types.AlgorithmSpec(a), WrappingKeySpec: types.WrappingKeySpec(w)})
				if errCode(err) != errValidation {
					t.Errorf("%s %s %s: %v, want ValidationException", spec, a, w, err)
				}
			}
		}
		_, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &key,
			WrappingAlgorithm: "RSA_AES_KEY_WRAP_SHA_512", WrappingKeySpec: types.WrappingKeySpecRsa2048})
		wantCode(t, err, errValidation)
		_, err = c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: &key,
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: "RSA_1024"})
		wantCode(t, err, errValidation)
	}
}

// TestImportTypeAndKeyMaterialIdAreSymmetricOnly: KMS rejects ImportType,
// KeyMaterialId and KeyMaterialDescription for HMAC and asymmetric keys.
func TestImportTypeAndKeyMaterialIdAreSymmetricOnly(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	for _, spec := range []keyspec.Spec{keyspec.HMAC256, keyspec.ECCNISTP256} {
		info := keyspec.MustLookup(spec)
		for name, mutate := range map[string]func(*kms.ImportKeyMaterialInput){
			"ImportType":             func(i *kms.ImportKeyMaterialInput) { i.ImportType = types.ImportTypeNewKeyMaterial },
			"KeyMaterialId":          func(i *kms.ImportKeyMaterialInput) { i.KeyMaterialId = strPtr("00") },
			"KeyMaterialDescription": func(i *kms.ImportKeyMaterialInput) { i.KeyMaterialDescription = strPtr("d") },
		} {
			t.Run(string(spec)+"/"+name, func(t *testing.T) {
				key := createExternal(t, c, spec, info.Usages[0])
				var leg keyspec.Combination
				for _, l := range keyspec.Legal(spec) {
					if l.KeySpec == keyspec.WrapRSA2048 {
						leg = l
					}
				}
				w := wrapFor(t, c, key, spec, leg.Algorithm, leg.KeySpec, newMaterial(t, spec))
				input := &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
					ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}
				mutate(input)
				_, err := c.ImportKeyMaterial(ctx, input)
				wantCode(t, err, errValidation)
			})
		}
	}
}

// TestReimportRules: asymmetric keys take only the same material again;
// symmetric EXISTING_KEY_MATERIAL must match the named or current material.
func TestReimportRules(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	imp := func(key string, spec keyspec.Spec, a keyspec.WrappingAlgorithm, mat []byte, mut func(*kms.ImportKeyMaterialInput)) (*kms.ImportKeyMaterialOutput, error) {
		w := wrapFor(t, c, key, spec, a, keyspec.WrapRSA2048, mat)
		in := &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
			ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}
		if mut != nil {
			mut(in)
		}
		return c.ImportKeyMaterial(ctx, in)
	}
	ec, ecMat := importedKey(t, c, keyspec.ECCNISTP256, keyspec.SignVerify)
	_, err := imp(ec, keyspec.ECCNISTP256, keyspec.RSAAESKeyWrapSHA256, newMaterial(t, keyspec.ECCNISTP256), nil)
	wantCode(t, err, errIncorrectMat)
	_, err = imp(ec, keyspec.ECCNISTP256, keyspec.RSAAESKeyWrapSHA256, ecMat, nil)
	wantCode(t, err, "")

	sym, symMat := importedKey(t, c, keyspec.SymmetricDefault, keyspec.EncryptDecrypt)
	first := *describe(t, c, sym).CurrentKeyMaterialId
	out, err := imp(sym, keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, symMat, func(i *kms.ImportKeyMaterialInput) {
		i.ImportType, i.KeyMaterialId = types.ImportTypeExistingKeyMaterial, &first
	})
	wantCode(t, err, "")
	if *out.KeyMaterialId != first {
		t.Fatalf("re-import gave key material id %s, want %s", *out.KeyMaterialId, first)
	}
	_, err = imp(sym, keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, newMaterial(t, keyspec.SymmetricDefault), func(i *kms.ImportKeyMaterialInput) {
		i.ImportType, i.KeyMaterialId = types.ImportTypeExistingKeyMaterial, &first
	})
	wantCode(t, err, errIncorrectMat)
	_, err = imp(sym, keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, symMat, func(i *kms.ImportKeyMaterialInput) {
		i.ImportType, i.KeyMaterialId = types.ImportTypeExistingKeyMaterial, strPtr("00ff")
	})
	wantCode(t, err, errNotFound)
	_, err = imp(sym, keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, symMat, func(i *kms.ImportKeyMaterialInput) {
		i.ImportType = types.ImportTypeNewKeyMaterial
	})
	wantCode(t, err, errIncorrectMat) // the same bytes are already associated
}

// TestDeleteImportedKeyMaterialIsReversible: the kill switch makes the key
// PendingImport at once, and re-importing the same bytes restores it.
func TestDeleteImportedKeyMaterialIsReversible(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	key, mat := importedKey(t, c, keyspec.HMAC256, keyspec.GenerateVerifyMAC)
	msg := []byte("m")
	mac := must[*kms.GenerateMacOutput](t)(c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: &key, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256}))
	_, err := c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: &key, KeyMaterialId: strPtr("00")})
	wantCode(t, err, errValidation)
	must[*kms.DeleteImportedKeyMaterialOutput](t)(c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: &key}))
	if st := describe(t, c, key).KeyState; st != types.KeyStatePendingImport {
		t.Fatalf("state after delete %s", st)
	}
	_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: &key, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	wantCode(t, err, errInvalidState)
	w := wrapFor(t, c, key, keyspec.HMAC256, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	must[*kms.ImportKeyMaterialOutput](t)(c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token,
		EncryptedKeyMaterial: w.blob, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}))
	must[*kms.VerifyMacOutput](t)(c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: &key, Message: msg, Mac: mac.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256}))
}

// TestMaterialExpiryPutsKeyInPendingImport: when ValidTo passes on the
// emulator clock the material is gone and the key is PendingImport.
func TestMaterialExpiryPutsKeyInPendingImport(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	spec := keyspec.SymmetricDefault
	key := createExternal(t, c, spec, keyspec.EncryptDecrypt)
	mat := newMaterial(t, spec)
	w := wrapFor(t, c, key, spec, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	must[*kms.ImportKeyMaterialOutput](t)(c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token,
		EncryptedKeyMaterial: w.blob, ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: inDays(srv, 2)}))
	srv.Advance(47 * time.Hour)
	if st := describe(t, c, key).KeyState; st != types.KeyStateEnabled {
		t.Fatalf("state before ValidTo %s", st)
	}
	srv.Advance(2 * time.Hour)
	md := describe(t, c, key)
	if md.KeyState != types.KeyStatePendingImport {
		t.Fatalf("state after ValidTo %s", md.KeyState)
	}
	if md.ValidTo != nil || md.ExpirationModel != "" {
		t.Errorf("expired key still reports ValidTo %v / %s", md.ValidTo, md.ExpirationModel)
	}
}

// TestExpireImportTokensExpiresIssuedTokensOnly: the test hook expires the
// tokens issued so far (ExpiredImportTokenException), leaves the clock
// where it was, and tokens issued afterwards work.
func TestExpireImportTokensExpiresIssuedTokensOnly(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	spec := keyspec.SymmetricDefault
	key := createExternal(t, c, spec, keyspec.EncryptDecrypt)
	mat := newMaterial(t, spec)
	w := wrapFor(t, c, key, spec, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	before := srv.Now()
	if n := srv.ExpireImportTokens(); n != 1 {
		t.Fatalf("ExpireImportTokens expired %d tokens, want 1", n)
	}
	if d := srv.Now().Sub(before); d < 0 || d > time.Minute {
		t.Fatalf("the clock moved by %v", d)
	}
	_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantCode(t, err, errExpiredToken)
	if d := describe(t, c, key); d.KeyState != types.KeyStatePendingImport {
		t.Fatalf("key is %s after a refused import", d.KeyState)
	}
	w = wrapFor(t, c, key, spec, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048, mat)
	_, err = c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token, EncryptedKeyMaterial: w.blob,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire})
	wantCode(t, err, "")
}
