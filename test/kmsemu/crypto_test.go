package kmsemu

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// TestEveryKeySpecImportsAndWorks imports material of every importable key
// spec (RSA_2048 wrapping key) and uses it: encrypt/decrypt, MAC, and
// sign with every algorithm of the spec, checked with the public key
// outside the emulator.
func TestEveryKeySpecImportsAndWorks(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	for _, spec := range keyspec.All() {
		info := keyspec.MustLookup(spec)
		usage := info.Usages[0]
		if info.Asymmetric() {
			usage = keyspec.SignVerify
		}
		t.Run(string(spec), func(t *testing.T) {
			key := createExternal(t, c, spec, usage)
			var leg keyspec.Combination
			for _, l := range keyspec.Legal(spec) {
				if l.KeySpec == keyspec.WrapRSA2048 {
					leg = l
				}
			}
			mat := newMaterial(t, spec)
			w := wrapFor(t, c, key, spec, leg.Algorithm, leg.KeySpec, mat)
			must[*kms.ImportKeyMaterialOutput](t)(c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: &key, ImportToken: w.token,
				EncryptedKeyMaterial: w.blob, ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire}))
			md := describe(t, c, key)
			if md.KeyState != types.KeyStateEnabled || string(md.KeySpec) != string(spec) || md.Origin != types.OriginTypeExternal {
				t.Fatalf("metadata %+v", md)
			}
			switch info.Family {
			case keyspec.FamilySymmetric:
				enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: &key, Plaintext: []byte("p")}))
				dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
				if string(dec.Plaintext) != "p" {
					t.Fatal("round trip")
				}
			case keyspec.FamilyHMAC:
				alg := types.MacAlgorithmSpec(md.MacAlgorithms[0])
				mac := must[*kms.GenerateMacOutput](t)(c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: &key, Message: []byte("m"), MacAlgorithm: alg}))
				must[*kms.VerifyMacOutput](t)(c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: &key, Message: []byte("m"), Mac: mac.Mac, MacAlgorithm: alg}))
				mac.Mac[0] ^= 1
				_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: &key, Message: []byte("m"), Mac: mac.Mac, MacAlgorithm: alg})
				wantCode(t, err, "KMSInvalidMacException")
				_, err = c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: &key, Message: []byte("m"), MacAlgorithm: otherMac(alg)})
				wantCode(t, err, errInvalidUsage)
			default:
				pk := must[*kms.GetPublicKeyOutput](t)(c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &key}))
				for _, alg := range md.SigningAlgorithms {
					h := signingHash(string(alg))
					msg := []byte("sign me")
					hh := h.New()
					hh.Write(msg)
					digest := hh.Sum(nil)
					for _, mt := range []types.MessageType{types.MessageTypeRaw, types.MessageTypeDigest} {
						in := msg
						if mt == types.MessageTypeDigest {
							in = digest
						}
						sig := must[*kms.SignOutput](t)(c.Sign(ctx, &kms.SignInput{KeyId: &key, Message: in, MessageType: mt, SigningAlgorithm: alg}))
						if !verifyOutside(t, pk.PublicKey, string(alg), h, digest, sig.Signature) {
							t.Fatalf("%s %s: signature does not verify with the public key", alg, mt)
						}
						must[*kms.VerifyOutput](t)(c.Verify(ctx, &kms.VerifyInput{KeyId: &key, Message: in, MessageType: mt, SigningAlgorithm: alg, Signature: sig.Signature}))
						sig.Signature[len(sig.Signature)/2] ^= 1
						_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: &key, Message: in, MessageType: mt, SigningAlgorithm: alg, Signature: sig.Signature})
						wantCode(t, err, "KMSInvalidSignatureException")
					}
					_, err := c.Sign(ctx, &kms.SignInput{KeyId: &key, Message: digest[1:], MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
					wantCode(t, err, errValidation)
				}
				_, err := c.Sign(ctx, &kms.SignInput{KeyId: &key, Message: make([]byte, 4097), SigningAlgorithm: md.SigningAlgorithms[0]})
				wantCode(t, err, errValidation)
				_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: &key, Plaintext: []byte("p")})
				wantCode(t, err, errInvalidUsage)
			}
		})
	}
}

func otherMac(a types.MacAlgorithmSpec) types.MacAlgorithmSpec {
	if a == types.MacAlgorithmSpecHmacSha256 {
		return types.MacAlgorithmSpecHmacSha512
	}
	return types.MacAlgorithmSpecHmacSha256
}

func verifyOutside(t *testing.T, der []byte, alg string, h crypto.Hash, digest, sig []byte) bool {
	t.Helper()
	if pub, err := secp256k1.ParsePKIXPublicKey(der); err == nil {
		return secp256k1.Verify(pub, digest, sig)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("GetPublicKey DER: %v", err)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if isPSS(alg) {
			return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	return false
}

// TestCryptoErrors covers the error answers of the cryptographic operations.
func TestCryptoErrors(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	a := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	b := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId
	rsaKey := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048})).KeyMetadata.KeyId
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: a, Plaintext: []byte("p"), EncryptionContext: map[string]string{"k": "v"}}))
	tampered := append([]byte{}, enc.CiphertextBlob...)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"decrypt with the other key's id", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: b, CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"k": "v"}})
			return err
		}, errIncorrectKey},
		{"decrypt tampered", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: map[string]string{"k": "v"}})
			return err
		}, errInvalidCipher},
		{"decrypt missing context", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			return err
		}, errInvalidCipher},
		{"decrypt garbage", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("garbage")})
			return err
		}, errInvalidCipher},
		{"encrypt 4097 bytes", func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: a, Plaintext: make([]byte, 4097)})
			return err
		}, errValidation},
		{"encrypt with RSAES_OAEP on symmetric", func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: a, Plaintext: []byte("p"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
			return err
		}, errInvalidUsage},
		{"data key with spec and bytes", func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a, KeySpec: types.DataKeySpecAes256, NumberOfBytes: ptr32(32)})
			return err
		}, errValidation},
		{"data key with neither", func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: a})
			return err
		}, errValidation},
		{"data key 1025 bytes", func() error {
			_, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: a, NumberOfBytes: ptr32(1025)})
			return err
		}, errValidation},
		{"data key on RSA key", func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: rsaKey, KeySpec: types.DataKeySpecAes256})
			return err
		}, errInvalidUsage},
		{"GetPublicKey on symmetric", func() error {
			_, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: a})
			return err
		}, errUnsupported},
		{"MAC on symmetric", func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: a, Message: []byte("m"), MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
			return err
		}, errInvalidUsage},
		{"sign on symmetric", func() error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: a, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
			return err
		}, errInvalidUsage},
		{"RSA OAEP round trip", func() error {
			e, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: rsaKey, Plaintext: []byte("p"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
			if err != nil {
				return err
			}
			d, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: rsaKey, CiphertextBlob: e.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
			if err == nil && string(d.Plaintext) != "p" {
				t.Error("RSA round trip plaintext")
			}
			return err
		}, ""},
		{"ReEncrypt to the other key", func() error {
			r, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"k": "v"}, DestinationKeyId: b})
			if err != nil {
				return err
			}
			d, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: r.CiphertextBlob})
			if err == nil && (string(d.Plaintext) != "p" || *d.KeyId != *r.KeyId) {
				t.Error("ReEncrypt result")
			}
			return err
		}, ""},
		{"encrypt on disabled key", func() error {
			if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: b}); err != nil {
				return err
			}
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: b, Plaintext: []byte("p")})
			return err
		}, errDisabled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), tc.want) })
	}
}
