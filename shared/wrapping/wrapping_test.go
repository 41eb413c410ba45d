package wrapping

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
)

var (
	wrapKeysOnce sync.Once
	wrapKeys     map[keyspec.WrappingKeySpec]*rsa.PrivateKey
)

// wrappingKeys generates one KMS-like wrapping key per wrapping key spec, once per run.
func wrappingKeys(t testing.TB) map[keyspec.WrappingKeySpec]*rsa.PrivateKey {
	t.Helper()
	wrapKeysOnce.Do(func() {
		wrapKeys = map[keyspec.WrappingKeySpec]*rsa.PrivateKey{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, w := range keyspec.WrappingKeySpecs() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := rsa.GenerateKey(rand.Reader, w.Bits())
				if err != nil {
					panic(err)
				}
				mu.Lock()
				wrapKeys[w] = k
				mu.Unlock()
			}()
		}
		wg.Wait()
	})
	return wrapKeys
}

// sampleMaterial returns key material of the exact format KMS expects for spec.
func sampleMaterial(t testing.TB, spec keyspec.Spec) []byte {
	t.Helper()
	info := keyspec.MustLookup(spec)
	switch info.Family {
	case keyspec.FamilySymmetric, keyspec.FamilyHMAC:
		b := make([]byte, info.KeyBytes)
		rand.Read(b)
		return b
	case keyspec.FamilyRSA:
		k, err := rsa.GenerateKey(rand.Reader, info.Bits)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	case keyspec.FamilyECC:
		var c elliptic.Curve
		switch info.Curve {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			// secp256k1 PKCS#8 with public key is 135 bytes; the wrapping
			// layer does not parse material, so same-size bytes stand in.
			b := make([]byte, 135)
			rand.Read(b)
			return b
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	t.Fatalf("no sample for %s", spec)
	return nil
}

var (
	rsaMaterialOnce sync.Once
	rsaMaterial     = map[keyspec.Spec][]byte{}
)

func materialFor(t testing.TB, spec keyspec.Spec) []byte {
	if keyspec.MustLookup(spec).Family == keyspec.FamilyRSA {
		rsaMaterialOnce.Do(func() {
			for _, s := range []keyspec.Spec{keyspec.RSA2048, keyspec.RSA3072, keyspec.RSA4096} {
				rsaMaterial[s] = sampleMaterial(t, s)
			}
		})
		return rsaMaterial[spec]
	}
	return sampleMaterial(t, spec)
}

// TestWrapRoundTripEveryLegalCombination wraps material of every importable
// key spec with every legal (algorithm, wrapping key spec) pair and unwraps it.
func TestWrapRoundTripEveryLegalCombination(t *testing.T) {
	keys := wrappingKeys(t)
	n := 0
	for _, spec := range keyspec.All() {
		legal := keyspec.Legal(spec)
		if len(legal) == 0 {
			t.Fatalf("%s has no legal wrapping combination", spec)
		}
		mat := materialFor(t, spec)
		for _, c := range legal {
			t.Run(string(spec)+"/"+string(c.Algorithm)+"/"+string(c.KeySpec), func(t *testing.T) {
				priv := keys[c.KeySpec]
				blob, err := Wrap(nil, &priv.PublicKey, spec, c.Algorithm, mat)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(blob, mat) {
					t.Fatal("wrapped blob contains the plaintext material")
				}
				got, err := Unwrap(priv, c.Algorithm, blob)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, mat) {
					t.Fatal("unwrapped material differs")
				}
				// The same blob under the other hash must not unwrap.
				other := map[keyspec.WrappingAlgorithm]keyspec.WrappingAlgorithm{
					keyspec.RSAESOAEPSHA1: keyspec.RSAESOAEPSHA256, keyspec.RSAESOAEPSHA256: keyspec.RSAESOAEPSHA1,
					keyspec.RSAAESKeyWrapSHA1: keyspec.RSAAESKeyWrapSHA256, keyspec.RSAAESKeyWrapSHA256: keyspec.RSAAESKeyWrapSHA1,
				}[c.Algorithm]
				if _, err := Unwrap(priv, other, blob); !errors.Is(err, ErrUnwrap) {
					t.Fatalf("unwrap with %s: err = %v, want ErrUnwrap", other, err)
				}
			})
			n++
		}
	}
	// 5 secret specs x 2 OAEP x 3 sizes + 3 RSA x 2 KW x 3 + 4 ECC x 4 x 3 - P521/OAEP/2048 x 2.
	if want := 30 + 18 + 48 - 2; n != want {
		t.Fatalf("%d legal combinations, want %d", n, want)
	}
}

// TestWrapRejectsEveryIllegalCombination: every combination the table refuses
// is refused by Wrap with a typed error before any encryption happens.
func TestWrapRejectsEveryIllegalCombination(t *testing.T) {
	keys := wrappingKeys(t)
	algs := append(keyspec.WrappingAlgorithms(), keyspec.RSAESPKCS1V15Rejected, "RSA_OAEP_SHA_512")
	refused := 0
	for _, spec := range keyspec.All() {
		for _, a := range algs {
			for _, w := range keyspec.WrappingKeySpecs() {
				if keyspec.CheckWrapping(spec, a, w) == nil {
					continue
				}
				refused++
				_, err := Wrap(nil, &keys[w].PublicKey, spec, a, []byte("0123456789abcdef0123456789abcdef"))
				var ic *keyspec.IllegalCombinationError
				if !errors.As(err, &ic) {
					t.Fatalf("%s/%s/%s: err = %v, want *IllegalCombinationError", spec, a, w, err)
				}
				if ic.Reason == "" || ic.Spec != spec {
					t.Fatalf("%s/%s/%s: unclear error %v", spec, a, w, err)
				}
			}
		}
	}
	if refused == 0 {
		t.Fatal("nothing refused")
	}
	cases := []struct {
		spec keyspec.Spec
		alg  keyspec.WrappingAlgorithm
		wks  keyspec.WrappingKeySpec
	}{
		{keyspec.SymmetricDefault, keyspec.RSAAESKeyWrapSHA256, keyspec.WrapRSA4096},
		{keyspec.HMAC512, keyspec.RSAAESKeyWrapSHA1, keyspec.WrapRSA2048},
		{keyspec.RSA2048, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096},
		{keyspec.RSA4096, keyspec.RSAESOAEPSHA1, keyspec.WrapRSA4096},
		{keyspec.ECCNISTP521, keyspec.RSAESOAEPSHA1, keyspec.WrapRSA2048},
		{keyspec.ECCNISTP521, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048},
		{keyspec.SymmetricDefault, keyspec.RSAESPKCS1V15Rejected, keyspec.WrapRSA2048},
	}
	for _, c := range cases {
		if err := keyspec.CheckWrapping(c.spec, c.alg, c.wks); err == nil {
			t.Errorf("%s/%s/%s accepted, KMS refuses it", c.spec, c.alg, c.wks)
		}
	}
	if _, err := Wrap(nil, &keys[keyspec.WrapRSA2048].PublicKey, "AES_128", keyspec.RSAESOAEPSHA1, make([]byte, 16)); !errors.Is(err, keyspec.ErrUnknownSpec) {
		t.Fatalf("unknown spec: err = %v", err)
	}
}

// TestP521DoesNotFitOAEPUnder2048 grounds the table's P-521 rule in arithmetic:
// the PKCS#8 of a P-521 key exceeds the OAEP capacity of a 2048-bit modulus.
func TestP521DoesNotFitOAEPUnder2048(t *testing.T) {
	mat := sampleMaterial(t, keyspec.ECCNISTP521)
	pub := &wrappingKeys(t)[keyspec.WrapRSA2048].PublicKey
	if _, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, mat, nil); err == nil {
		t.Fatalf("a %d-byte P-521 PKCS#8 fit RSA-2048 OAEP-SHA1; the legality rule would be needless", len(mat))
	}
	p384 := sampleMaterial(t, keyspec.ECCNISTP384)
	if _, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, p384, nil); err != nil {
		t.Fatalf("P-384 PKCS#8 (%d bytes) should fit RSA-2048 OAEP-SHA256: %v", len(p384), err)
	}
}

func TestParsePublicKey(t *testing.T) {
	keys := wrappingKeys(t)
	for w, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pub, ws, err := ParsePublicKey(der)
		if err != nil || ws != w || !pub.Equal(&k.PublicKey) {
			t.Fatalf("%s: got %s, %v", w, ws, err)
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if _, _, err := ParsePublicKey(der); err == nil {
		t.Fatal("RSA-1024 wrapping key accepted")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ = x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if _, _, err := ParsePublicKey(der); err == nil {
		t.Fatal("EC wrapping key accepted")
	}
	if _, _, err := ParsePublicKey([]byte("junk")); err == nil {
		t.Fatal("junk accepted")
	}
}

// TestOAEPAgreesWithOpenSSL: blobs made by openssl pkeyutl unwrap with the
// reference, and blobs made by the reference decrypt with openssl pkeyutl.
func TestOAEPAgreesWithOpenSSL(t *testing.T) {
	openssl := requireOpenSSL(t)
	dir := t.TempDir()
	priv := wrappingKeys(t)[keyspec.WrapRSA3072]
	keyFile := writePrivatePEM(t, dir, priv)
	pubFile := writePublicPEM(t, dir, &priv.PublicKey)
	for _, a := range []keyspec.WrappingAlgorithm{keyspec.RSAESOAEPSHA1, keyspec.RSAESOAEPSHA256} {
		md := "sha1"
		if a.SHA256() {
			md = "sha256"
		}
		mat := make([]byte, 32)
		rand.Read(mat)
		matFile := filepath.Join(dir, "mat")
		os.WriteFile(matFile, mat, 0o600)
		blob, err := exec.Command(openssl, "pkeyutl", "-encrypt", "-pubin", "-inkey", pubFile, "-in", matFile,
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md).Output()
		if err != nil {
			t.Fatalf("%s: openssl encrypt: %v", a, err)
		}
		got, err := Unwrap(priv, a, blob)
		if err != nil || !bytes.Equal(got, mat) {
			t.Fatalf("%s: unwrap openssl blob: %v", a, err)
		}
		ours, err := Wrap(nil, &priv.PublicKey, keyspec.SymmetricDefault, a, mat)
		if err != nil {
			t.Fatal(err)
		}
		blobFile := filepath.Join(dir, "blob")
		os.WriteFile(blobFile, ours, 0o600)
		back, err := exec.Command(openssl, "pkeyutl", "-decrypt", "-inkey", keyFile, "-in", blobFile,
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md).Output()
		if err != nil || !bytes.Equal(back, mat) {
			t.Fatalf("%s: openssl decrypt of our blob: %v", a, err)
		}
	}
}

// TestRSAAESKeyWrapAgreesWithOpenSSL builds RSA_AES_KEY_WRAP blobs the way the
// KMS documentation does it with openssl (pkeyutl OAEP of an AES key, then
// enc -id-aes256-wrap-pad of the PKCS#8) and unwraps them with the reference.
func TestRSAAESKeyWrapAgreesWithOpenSSL(t *testing.T) {
	openssl := requireOpenSSL(t)
	dir := t.TempDir()
	priv := wrappingKeys(t)[keyspec.WrapRSA4096]
	pubFile := writePublicPEM(t, dir, &priv.PublicKey)
	for _, a := range []keyspec.WrappingAlgorithm{keyspec.RSAAESKeyWrapSHA1, keyspec.RSAAESKeyWrapSHA256} {
		md := "sha1"
		if a.SHA256() {
			md = "sha256"
		}
		for _, spec := range []keyspec.Spec{keyspec.RSA2048, keyspec.ECCNISTP384} {
			mat := materialFor(t, spec)
			aesKey := make([]byte, 32)
			rand.Read(aesKey)
			aesFile, matFile := filepath.Join(dir, "aes"), filepath.Join(dir, "mat")
			os.WriteFile(aesFile, aesKey, 0o600)
			os.WriteFile(matFile, mat, 0o600)
			head, err := exec.Command(openssl, "pkeyutl", "-encrypt", "-pubin", "-inkey", pubFile, "-in", aesFile,
				"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:"+md, "-pkeyopt", "rsa_mgf1_md:"+md).Output()
			if err != nil {
				t.Fatalf("openssl pkeyutl: %v", err)
			}
			tail, err := exec.Command(openssl, "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(aesKey), "-iv", "A65959A6", "-in", matFile).Output()
			if err != nil {
				t.Fatalf("openssl enc: %v", err)
			}
			got, err := Unwrap(priv, a, append(head, tail...))
			if err != nil || !bytes.Equal(got, mat) {
				t.Fatalf("%s/%s: unwrap of openssl-built blob: %v", a, spec, err)
			}
		}
	}
}

func TestUnwrapRejectsBadInput(t *testing.T) {
	priv := wrappingKeys(t)[keyspec.WrapRSA2048]
	good, err := Wrap(nil, &priv.PublicKey, keyspec.ECCNISTP256, keyspec.RSAAESKeyWrapSHA256, materialFor(t, keyspec.ECCNISTP256))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		alg  keyspec.WrappingAlgorithm
		blob []byte
	}{
		"empty":              {keyspec.RSAESOAEPSHA1, nil},
		"short oaep":         {keyspec.RSAESOAEPSHA256, make([]byte, 100)},
		"short hybrid":       {keyspec.RSAAESKeyWrapSHA256, good[:256+8]},
		"corrupt kwp":        {keyspec.RSAAESKeyWrapSHA256, append(bytes.Clone(good[:len(good)-1]), good[len(good)-1]^1)},
		"corrupt oaep block": {keyspec.RSAAESKeyWrapSHA256, append([]byte{good[0] ^ 1}, good[1:]...)},
		"unknown algorithm":  {"RSAES_PKCS1_V1_5", good},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if out, err := Unwrap(priv, c.alg, c.blob); err == nil || out != nil {
				t.Fatalf("accepted: %v", err)
			}
		})
	}
}

func writePrivatePEM(t testing.TB, dir string, k *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "wrap.key")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func writePublicPEM(t testing.TB, dir string, k *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "wrap.pub")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func BenchmarkUnwrap(b *testing.B) {
	priv := wrappingKeys(b)[keyspec.WrapRSA4096]
	for _, a := range keyspec.WrappingAlgorithms() {
		spec := keyspec.SymmetricDefault
		if a.Hybrid() {
			spec = keyspec.ECCNISTP256
		}
		blob, err := Wrap(nil, &priv.PublicKey, spec, a, materialFor(b, spec))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(a), func(b *testing.B) {
			for b.Loop() {
				if _, err := Unwrap(priv, a, blob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
