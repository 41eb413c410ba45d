package kmsemu

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestAliasRules: names, duplicates, UpdateAlias requires the same key spec
// and usage, alias moves are seen by Encrypt, old ciphertexts still decrypt.
func TestAliasRules(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	k1 := *must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	k2 := *must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	hm := *must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})).KeyMetadata.KeyId
	rsaEnc := *must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})).KeyMetadata.KeyId
	rsaSig := *must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})).KeyMetadata.KeyId
	a := "alias/app"
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"create", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: &a, TargetKeyId: &k1})
			return err
		}, ""},
		{"create duplicate", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: &a, TargetKeyId: &k2})
			return err
		}, errAlreadyExists},
		{"create without prefix", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: strPtr("app2"), TargetKeyId: &k1})
			return err
		}, errValidation},
		{"create bad characters", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: strPtr("alias/a b"), TargetKeyId: &k1})
			return err
		}, errValidation},
		{"create reserved", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: strPtr("alias/aws/x"), TargetKeyId: &k1})
			return err
		}, errInvalidAliasName},
		{"create targeting alias", func() error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: strPtr("alias/b"), TargetKeyId: &a})
			return err
		}, errNotFound},
		{"update to HMAC key", func() error {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: &a, TargetKeyId: &hm})
			return err
		}, errValidation},
		{"update to same type", func() error {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: &a, TargetKeyId: &k2})
			return err
		}, ""},
		{"update missing", func() error {
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: strPtr("alias/none"), TargetKeyId: &k2})
			return err
		}, errNotFound},
		{"RSA encrypt alias to RSA sign key", func() error {
			if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: strPtr("alias/rsa"), TargetKeyId: &rsaEnc}); err != nil {
				return err
			}
			_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: strPtr("alias/rsa"), TargetKeyId: &rsaSig})
			return err
		}, errValidation},
		{"delete", func() error {
			_, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: strPtr("alias/rsa")})
			return err
		}, ""},
		{"delete missing", func() error {
			_, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: strPtr("alias/rsa")})
			return err
		}, errNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.want) })
	}
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: &a, Plaintext: []byte("p")}))
	if got := *describe(t, c, *enc.KeyId).KeyId; got != k2 {
		t.Fatalf("alias encrypts under %s, want %s", got, k2)
	}
	must[*kms.UpdateAliasOutput](t)(c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: &a, TargetKeyId: &k1}))
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	if string(dec.Plaintext) != "p" {
		t.Fatal("decrypt after alias move")
	}
	_, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: &a, CiphertextBlob: enc.CiphertextBlob})
	wantCode(t, err, errIncorrectKey)
	list := must[*kms.ListAliasesOutput](t)(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: &k1}))
	if len(list.Aliases) != 1 || *list.Aliases[0].AliasName != a || *list.Aliases[0].TargetKeyId != k1 {
		t.Fatalf("ListAliases %+v", list.Aliases)
	}
}
