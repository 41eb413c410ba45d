package kmsemu

import (
	"bytes"
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// TestFreshWrappingKeyPerCall: every GetParametersForImport call hands out a
// different wrapping key of the requested size, pooled or not.
func TestFreshWrappingKeyPerCall(t *testing.T) {
	for _, pool := range []int{-1, 1} {
		srv := startServer(t, Options{WrappingKeyPool: pool})
		c := newClient(srv.URL())
		key := createExternal(t, c, keyspec.SymmetricDefault, keyspec.EncryptDecrypt)
		var prev []byte
		for i := 0; i < 3; i++ {
			p := must[*kms.GetParametersForImportOutput](t)(c.GetParametersForImport(context.Background(), &kms.GetParametersForImportInput{KeyId: &key,
				WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048}))
			if _, wks, err := wrapping.ParsePublicKey(p.PublicKey); err != nil || wks != keyspec.WrapRSA2048 {
				t.Fatalf("wrapping key %v %v", wks, err)
			}
			if bytes.Equal(prev, p.PublicKey) {
				t.Fatalf("pool %d: wrapping key reused", pool)
			}
			prev = p.PublicKey
		}
	}
}

// BenchmarkGetParametersForImport4096 measures GetParametersForImport with
// RSA_4096 wrapping keys (pool refills in the background).
func BenchmarkGetParametersForImport4096(b *testing.B) {
	srv := startServer(b, Options{})
	c := newClient(srv.URL())
	key := createExternal(b, c, keyspec.SymmetricDefault, keyspec.EncryptDecrypt)
	for b.Loop() {
		if _, err := c.GetParametersForImport(context.Background(), &kms.GetParametersForImportInput{KeyId: &key,
			WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa4096}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptDecrypt measures a symmetric Encrypt + Decrypt round trip over HTTP.
func BenchmarkEncryptDecrypt(b *testing.B) {
	srv := startServer(b, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	k := must[*kms.CreateKeyOutput](b)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
	for b.Loop() {
		e, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("benchmark")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: e.CiphertextBlob}); err != nil {
			b.Fatal(err)
		}
	}
}
