package keyspec

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyferry/keyferry/shared/secp256k1"
)

// fixtures are generated once per test binary: RSA-4096 generation is slow.
type fixtures struct {
	rsa      map[int]*rsa.PrivateKey
	rsaDER   map[int][]byte
	ec       map[string]*ecdsa.PrivateKey
	ecDER    map[string][]byte // x509 PKCS#8, public key included
	k1DER    []byte            // openssl PKCS#8 secp256k1, public key included
	k1SPKI   []byte            // openssl SPKI of the same key
	p256SSL  []byte            // openssl PKCS#8 P-256, public key included
	p256SPKI []byte
	ed25519  []byte
}

var (
	fixOnce sync.Once
	fix     fixtures
	fixErr  error
)

func loadFixtures(t testing.TB) *fixtures {
	t.Helper()
	fixOnce.Do(func() {
		f := fixtures{rsa: map[int]*rsa.PrivateKey{}, rsaDER: map[int][]byte{}, ec: map[string]*ecdsa.PrivateKey{}, ecDER: map[string][]byte{}}
		for _, bits := range []int{2048, 3072, 4096} {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				fixErr = err
				return
			}
			f.rsa[bits] = k
			f.rsaDER[bits], _ = x509.MarshalPKCS8PrivateKey(k)
		}
		for name, c := range map[string]elliptic.Curve{"P-224": elliptic.P224(), "P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				fixErr = err
				return
			}
			f.ec[name] = k
			f.ecDER[name], _ = x509.MarshalPKCS8PrivateKey(k)
		}
		dir, err := os.MkdirTemp("", "keyspec-material")
		if err != nil {
			fixErr = err
			return
		}
		defer os.RemoveAll(dir)
		if f.k1DER, f.k1SPKI, fixErr = opensslPKCS8(dir, "secp256k1"); fixErr != nil {
			return
		}
		if f.p256SSL, f.p256SPKI, fixErr = opensslPKCS8(dir, "prime256v1"); fixErr != nil {
			return
		}
		_, edKey, _ := ed25519.GenerateKey(rand.Reader)
		f.ed25519, fixErr = x509.MarshalPKCS8PrivateKey(edKey)
		fix = f
	})
	if fixErr != nil {
		t.Fatalf("fixtures: %v", fixErr)
	}
	return &fix
}

// opensslPKCS8 generates an EC key with openssl and returns its PKCS#8 DER
// (openssl includes the public key) and SPKI DER.
func opensslPKCS8(dir, curve string) (pkcs8, spki []byte, err error) {
	pem := filepath.Join(dir, curve+".pem")
	if out, err := exec.Command("openssl", "ecparam", "-name", curve, "-genkey", "-noout", "-out", pem).CombinedOutput(); err != nil {
		return nil, nil, errors.New(string(out))
	}
	if pkcs8, err = exec.Command("openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "der", "-in", pem).Output(); err != nil {
		return nil, nil, err
	}
	if spki, err = exec.Command("openssl", "pkey", "-in", pem, "-pubout", "-outform", "der").Output(); err != nil {
		return nil, nil, err
	}
	return pkcs8, spki, nil
}

// reencodeEC rewrites the ECPrivateKey inside an EC PKCS#8 key: edit may
// drop or replace the public key, the scalar or the inner parameters. This
// is how the tests build SoftHSM-style keys without the public key.
func reencodeEC(t testing.TB, der []byte, edit func(*ecPrivateKey)) []byte {
	t.Helper()
	var pki privateKeyInfo
	if _, err := asn1.Unmarshal(der, &pki); err != nil {
		t.Fatal(err)
	}
	var inner ecPrivateKey
	if _, err := asn1.Unmarshal(pki.PrivateKey, &inner); err != nil {
		t.Fatal(err)
	}
	edit(&inner)
	innerDER, err := asn1.Marshal(inner)
	if err != nil {
		t.Fatal(err)
	}
	pki.PrivateKey = innerDER
	out, err := asn1.Marshal(pki)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dropPublic(k *ecPrivateKey) { k.PublicKey = asn1.BitString{} }

func setPublic(point []byte) func(*ecPrivateKey) {
	return func(k *ecPrivateKey) { k.PublicKey = asn1.BitString{Bytes: point, BitLength: 8 * len(point)} }
}

func pointOf(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

type materialCase struct {
	name     string
	spec     Spec
	material []byte
	// wantErr is a substring of the error; empty means the material is valid.
	wantErr string
	// wantPub, for valid asymmetric material, is the expected SPKI DER.
	wantPub []byte
}

func materialCases(t testing.TB) []materialCase {
	f := loadFixtures(t)
	spki := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	p256 := f.ec["P-256"]
	k1NoPub := reencodeEC(t, f.k1DER, dropPublic)
	k1Other, _ := secp256k1.GenerateKey(nil)
	cases := []materialCase{
		// Raw secrets.
		{"symmetric 32", SymmetricDefault, randBytes(32), "", nil},
		{"symmetric 16", SymmetricDefault, randBytes(16), "SYMMETRIC_DEFAULT material is 16 bytes, want 32", nil},
		{"symmetric 33", SymmetricDefault, randBytes(33), "SYMMETRIC_DEFAULT material is 33 bytes, want 32", nil},
		{"symmetric empty", SymmetricDefault, nil, "SYMMETRIC_DEFAULT material is 0 bytes, want 32", nil},
		{"hmac224 28", HMAC224, randBytes(28), "", nil},
		{"hmac224 64", HMAC224, randBytes(64), "", nil},
		{"hmac224 27", HMAC224, randBytes(27), "HMAC_224 material is 27 bytes, want 28..64", nil},
		{"hmac224 65", HMAC224, randBytes(65), "HMAC_224 material is 65 bytes, want 28..64", nil},
		{"hmac256 32", HMAC256, randBytes(32), "", nil},
		{"hmac256 64", HMAC256, randBytes(64), "", nil},
		{"hmac256 20", HMAC256, randBytes(20), "HMAC_256 material is 20 bytes, want 32..64", nil},
		{"hmac256 65", HMAC256, randBytes(65), "HMAC_256 material is 65 bytes, want 32..64", nil},
		{"hmac384 48", HMAC384, randBytes(48), "", nil},
		{"hmac384 128", HMAC384, randBytes(128), "", nil},
		{"hmac384 47", HMAC384, randBytes(47), "HMAC_384 material is 47 bytes, want 48..128", nil},
		{"hmac512 64", HMAC512, randBytes(64), "", nil},
		{"hmac512 128", HMAC512, randBytes(128), "", nil},
		{"hmac512 129", HMAC512, randBytes(129), "HMAC_512 material is 129 bytes, want 64..128", nil},

		// RSA.
		{"rsa2048", RSA2048, f.rsaDER[2048], "", spki(&f.rsa[2048].PublicKey)},
		{"rsa3072", RSA3072, f.rsaDER[3072], "", spki(&f.rsa[3072].PublicKey)},
		{"rsa4096", RSA4096, f.rsaDER[4096], "", spki(&f.rsa[4096].PublicKey)},
		{"rsa2048 given 3072", RSA2048, f.rsaDER[3072], "RSA_2048 material is an RSA-3072 key", nil},
		{"rsa4096 given 2048", RSA4096, f.rsaDER[2048], "RSA_4096 material is an RSA-2048 key", nil},
		{"rsa2048 given P-256", RSA2048, f.ecDER["P-256"], "RSA_2048 material is a P-256 key", nil},
		{"rsa2048 given Ed25519", RSA2048, f.ed25519, "RSA_2048 material is an Ed25519 key", nil},
		{"rsa2048 given PKCS#1", RSA2048, x509.MarshalPKCS1PrivateKey(f.rsa[2048]), "RSA_2048 material is not PKCS#8 DER", nil},
		{"rsa2048 given garbage", RSA2048, []byte("-----BEGIN PRIVATE KEY-----"), "RSA_2048 material is not PKCS#8 DER", nil},
		{"rsa2048 trailing byte", RSA2048, append(append([]byte(nil), f.rsaDER[2048]...), 0), "RSA_2048 material is not PKCS#8 DER: 1 trailing bytes", nil},
		{"rsa2048 given 32 raw bytes", RSA2048, randBytes(32), "RSA_2048 material is not PKCS#8 DER", nil},
		{"rsa2048 corrupted prime", RSA2048, corruptRSA(t, f.rsa[2048]), "RSA_2048 material is", nil},

		// NIST curves.
		{"p256 with public key", ECCNISTP256, f.ecDER["P-256"], "", spki(&p256.PublicKey)},
		{"p256 without public key", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], dropPublic), "", spki(&p256.PublicKey)},
		{"p256 compressed public key", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], setPublic(elliptic.MarshalCompressed(elliptic.P256(), p256.X, p256.Y))), "", spki(&p256.PublicKey)},
		{"p256 inner curve parameters", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) { k.Parameters = curveOIDs[0].oid }), "", spki(&p256.PublicKey)},
		{"p256 from openssl", ECCNISTP256, f.p256SSL, "", f.p256SPKI},
		{"p256 from openssl without public key", ECCNISTP256, reencodeEC(t, f.p256SSL, dropPublic), "", f.p256SPKI},
		{"p384 with public key", ECCNISTP384, f.ecDER["P-384"], "", spki(&f.ec["P-384"].PublicKey)},
		{"p384 without public key", ECCNISTP384, reencodeEC(t, f.ecDER["P-384"], dropPublic), "", spki(&f.ec["P-384"].PublicKey)},
		{"p521 with public key", ECCNISTP521, f.ecDER["P-521"], "", spki(&f.ec["P-521"].PublicKey)},
		{"p521 without public key", ECCNISTP521, reencodeEC(t, f.ecDER["P-521"], dropPublic), "", spki(&f.ec["P-521"].PublicKey)},
		{"p256 given P-384", ECCNISTP256, f.ecDER["P-384"], "ECC_NIST_P256 material is a P-384 key", nil},
		{"p521 given P-256", ECCNISTP521, f.ecDER["P-256"], "ECC_NIST_P521 material is a P-256 key", nil},
		{"p256 given P-224", ECCNISTP256, f.ecDER["P-224"], "ECC_NIST_P256 material is a P-224 key", nil},
		{"p256 given secp256k1", ECCNISTP256, f.k1DER, "ECC_NIST_P256 material is a secp256k1 key", nil},
		{"p256 given RSA", ECCNISTP256, f.rsaDER[2048], "ECC_NIST_P256 material is an RSA-2048 key", nil},
		{"p256 mismatching public key", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], setPublic(pointOf(t, mustEC(t, elliptic.P256())))), "embedded public key: does not match the private key", nil},
		{"p256 public key off curve", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) { k.PublicKey.Bytes[64] ^= 1 }), "ECC_NIST_P256 material's embedded public key", nil},
		{"p256 scalar zero", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) { k.PrivateKey = make([]byte, 32); k.PublicKey = asn1.BitString{} }), "private scalar out of range", nil},
		{"p256 scalar N", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) {
			k.PrivateKey = elliptic.P256().Params().N.FillBytes(make([]byte, 32))
			k.PublicKey = asn1.BitString{}
		}), "private scalar out of range", nil},
		{"p256 scalar 33 bytes", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) { k.PrivateKey = append([]byte{1}, k.PrivateKey...) }), "33-byte private scalar, want 32", nil},
		{"p256 inner parameters P-384", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) { k.Parameters = curveOIDs[1].oid }), "names curve 1.3.132.0.34 inside its ECPrivateKey", nil},
		{"p256 ECPrivateKey version 0", ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], func(k *ecPrivateKey) { k.Version = 0 }), "ECPrivateKey version 0", nil},

		// secp256k1.
		{"secp256k1 from openssl", ECCSECGP256K1, f.k1DER, "", f.k1SPKI},
		{"secp256k1 without public key", ECCSECGP256K1, k1NoPub, "", f.k1SPKI},
		{"secp256k1 mismatching public key", ECCSECGP256K1, reencodeEC(t, f.k1DER, setPublic(k1Other.PublicKey.Bytes())), "does not match private key", nil},
		{"secp256k1 given P-256", ECCSECGP256K1, f.ecDER["P-256"], "ECC_SECG_P256K1 material is a P-256 key", nil},
		{"secp256k1 given RSA", ECCSECGP256K1, f.rsaDER[2048], "ECC_SECG_P256K1 material is an RSA-2048 key", nil},
		{"secp256k1 scalar zero", ECCSECGP256K1, reencodeEC(t, k1NoPub, func(k *ecPrivateKey) { k.PrivateKey = make([]byte, 32) }), "invalid secp256k1 key", nil},
		{"secp256k1 given raw scalar", ECCSECGP256K1, randBytes(32), "ECC_SECG_P256K1 material is not PKCS#8 DER", nil},

		// Raw specs do not care about structure: a PKCS#8 blob of the right length is just bytes.
		{"symmetric empty-looking DER", SymmetricDefault, append([]byte{0x30, 0x1e}, make([]byte, 30)...), "", nil},
	}
	return cases
}

func mustEC(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// corruptRSA returns PKCS#8 of a copy of k with a wrong prime.
func corruptRSA(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	bad := *k
	bad.Primes = []*big.Int{new(big.Int).Add(k.Primes[0], big.NewInt(2)), k.Primes[1]}
	bad.Precomputed = rsa.PrecomputedValues{}
	der, err := asn1.Marshal(struct {
		Version int
		Algo    struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue
		}
		PrivateKey []byte
	}{
		Algo: struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue
		}{oidRSAEncryption, asn1.NullRawValue},
		PrivateKey: pkcs1Raw(t, &bad),
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// pkcs1Raw encodes an RSA key as PKCS#1 without any validation.
func pkcs1Raw(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	one := big.NewInt(1)
	p, q := k.Primes[0], k.Primes[1]
	der, err := asn1.Marshal(struct {
		Version               int
		N                     *big.Int
		E                     int
		D, P, Q, Dp, Dq, Qinv *big.Int
	}{0, k.N, k.E, k.D, p, q,
		new(big.Int).Mod(k.D, new(big.Int).Sub(p, one)),
		new(big.Int).Mod(k.D, new(big.Int).Sub(q, one)),
		new(big.Int).ModInverse(q, p)})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseMaterial(t *testing.T) {
	for _, tc := range materialCases(t) {
		t.Run(string(tc.spec)+"/"+tc.name, func(t *testing.T) {
			m, err := ParseMaterial(tc.spec, tc.material)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted; want error containing %q", tc.wantErr)
				}
				if !errors.Is(err, ErrIncorrectMaterial) {
					t.Fatalf("error %v does not match ErrIncorrectMaterial", err)
				}
				var me *MaterialError
				if !errors.As(err, &me) || me.Spec != tc.spec {
					t.Fatalf("error %v is not a *MaterialError for %s", err, tc.spec)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if m.Spec != tc.spec {
				t.Fatalf("Spec = %s", m.Spec)
			}
			info := MustLookup(tc.spec)
			if info.Format == MaterialRaw {
				if !bytes.Equal(m.Secret, tc.material) || m.Private != nil || m.PublicDER != nil {
					t.Fatal("raw material not returned as Secret only")
				}
				// Secret is a copy, not an alias of the caller's buffer.
				tc.material[0] ^= 0xff
				if bytes.Equal(m.Secret, tc.material) {
					t.Fatal("Secret aliases the input")
				}
				tc.material[0] ^= 0xff
				return
			}
			if m.Secret != nil || m.Private == nil {
				t.Fatal("asymmetric material without Private or with Secret")
			}
			if !bytes.Equal(m.PublicDER, tc.wantPub) {
				t.Fatalf("PublicDER\n got %X\nwant %X", m.PublicDER, tc.wantPub)
			}
			checkSignsForPublic(t, m)
		})
	}
}

// checkSignsForPublic proves Private and PublicDER belong together: a
// signature by Private verifies under the parsed PublicDER.
func checkSignsForPublic(t *testing.T, m *Material) {
	t.Helper()
	digest := sha256.Sum256([]byte("keyferry material"))
	sig, err := m.Private.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Private.(*secp256k1.PrivateKey); ok {
		pub, err := secp256k1.ParsePKIXPublicKey(m.PublicDER)
		if err != nil || !secp256k1.Verify(pub, digest[:], sig) {
			t.Fatalf("secp256k1 signature does not verify under PublicDER: %v", err)
		}
		return
	}
	pub, err := x509.ParsePKIXPublicKey(m.PublicDER)
	if err != nil {
		t.Fatal(err)
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			t.Fatalf("RSA signature does not verify under PublicDER: %v", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatal("ECDSA signature does not verify under PublicDER")
		}
	default:
		t.Fatalf("PublicDER holds %T", pub)
	}
}

func TestParseMaterialUnknownSpec(t *testing.T) {
	for _, spec := range []Spec{"", "RSA_1024", "ECC_NIST_P224", "SM2", "symmetric_default"} {
		_, err := ParseMaterial(spec, randBytes(32))
		if !errors.Is(err, ErrUnknownSpec) || errors.Is(err, ErrIncorrectMaterial) {
			t.Fatalf("%q: err %v, want ErrUnknownSpec only", spec, err)
		}
	}
}

// TestInvariantBadInputGetsClearError (security invariant 5): every kind of
// bad material gets a typed error that names the spec and the problem.
func TestInvariantBadInputGetsClearError(t *testing.T) {
	for _, tc := range materialCases(t) {
		if tc.wantErr == "" {
			continue
		}
		_, err := ParseMaterial(tc.spec, tc.material)
		var me *MaterialError
		if !errors.As(err, &me) || me.Reason == "" || !strings.HasPrefix(me.Reason, string(tc.spec)+" material") {
			t.Errorf("%s: error %v does not start with %q", tc.name, err, string(tc.spec)+" material")
		}
	}
}

// TestInvariantNoPlaintextKeyMaterialInErrors (security invariant 1, nothing
// but wrapped blobs reaches a log): errors about rejected material never
// quote the material, in raw, hex or upper-case hex form.
func TestInvariantNoPlaintextKeyMaterialInErrors(t *testing.T) {
	for _, tc := range materialCases(t) {
		if tc.wantErr == "" || len(tc.material) < 8 {
			continue
		}
		_, err := ParseMaterial(tc.spec, tc.material)
		msg := err.Error()
		for i := 0; i+8 <= len(tc.material); i += 4 {
			chunk := tc.material[i : i+8]
			h := hex.EncodeToString(chunk)
			if bytes.Contains([]byte(msg), chunk) && !isPrintable(chunk) ||
				strings.Contains(msg, h) || strings.Contains(msg, strings.ToUpper(h)) {
				t.Fatalf("%s: error %q quotes material bytes %X", tc.name, msg, chunk)
			}
		}
	}
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// TestInvariantMaterialDiffersFromTwin (reliability invariant: a key never
// gets material that differs from its HSM twin): Equal tells the same key
// apart from any other, whatever optional fields the encodings carry.
func TestInvariantMaterialDiffersFromTwin(t *testing.T) {
	f := loadFixtures(t)
	parse := func(spec Spec, b []byte) *Material {
		t.Helper()
		m, err := ParseMaterial(spec, b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	secret := randBytes(32)
	otherSecret := append([]byte(nil), secret...)
	otherSecret[31] ^= 1
	k1Other, _ := secp256k1.GenerateKey(nil)
	k1OtherDER, _ := secp256k1.MarshalPKCS8PrivateKey(k1Other, true)
	p256Other, _ := x509.MarshalPKCS8PrivateKey(mustEC(t, elliptic.P256()))

	tests := []struct {
		name string
		a, b *Material
		want bool
	}{
		{"same secret", parse(SymmetricDefault, secret), parse(SymmetricDefault, secret), true},
		{"secret differs in one bit", parse(SymmetricDefault, secret), parse(SymmetricDefault, otherSecret), false},
		{"same bytes, other spec", parse(SymmetricDefault, secret), parse(HMAC256, secret), false},
		{"HMAC prefix", parse(HMAC256, append(append([]byte(nil), secret...), 1)), parse(HMAC256, secret), false},
		{"same RSA key", parse(RSA2048, f.rsaDER[2048]), parse(RSA2048, f.rsaDER[2048]), true},
		{"P-256 with and without public key", parse(ECCNISTP256, f.ecDER["P-256"]), parse(ECCNISTP256, reencodeEC(t, f.ecDER["P-256"], dropPublic)), true},
		{"other P-256 key", parse(ECCNISTP256, f.ecDER["P-256"]), parse(ECCNISTP256, p256Other), false},
		{"secp256k1 with and without public key", parse(ECCSECGP256K1, f.k1DER), parse(ECCSECGP256K1, reencodeEC(t, f.k1DER, dropPublic)), true},
		{"other secp256k1 key", parse(ECCSECGP256K1, f.k1DER), parse(ECCSECGP256K1, k1OtherDER), false},
		{"nil", parse(SymmetricDefault, secret), nil, false},
		{"empty materials", &Material{Spec: SymmetricDefault}, &Material{Spec: SymmetricDefault}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Equal(tc.b); got != tc.want {
				t.Fatalf("Equal = %v, want %v", got, tc.want)
			}
			if tc.b != nil {
				if got := tc.b.Equal(tc.a); got != tc.want {
					t.Fatalf("Equal is not symmetric")
				}
			}
		})
	}
}

func TestMarshalPublicKey(t *testing.T) {
	f := loadFixtures(t)
	k1, err := secp256k1.ParsePKIXPublicKey(f.k1SPKI)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := x509.MarshalPKIXPublicKey(&f.ec["P-256"].PublicKey)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&f.rsa[2048].PublicKey)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want []byte
	}{
		{"secp256k1 pointer", k1, f.k1SPKI},
		{"secp256k1 value", *k1, f.k1SPKI},
		{"ecdsa", &f.ec["P-256"].PublicKey, p256},
		{"rsa", &f.rsa[2048].PublicKey, rsaDER},
		{"unsupported", "not a key", nil},
		{"secp256k1 off curve", &secp256k1.PublicKey{X: big.NewInt(1), Y: big.NewInt(1)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MarshalPublicKey(tc.pub)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("marshalled %X", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %X, %v; want %X", got, err, tc.want)
			}
		})
	}
}

// FuzzParseMaterial: no bytes make ParseMaterial panic for any spec; every
// rejection is a *MaterialError, and every acceptance is consistent.
func FuzzParseMaterial(f *testing.F) {
	f.Fuzz(func(t *testing.T, material []byte) {
		for _, spec := range All() {
			m, err := ParseMaterial(spec, material)
			if err != nil {
				var me *MaterialError
				if !errors.As(err, &me) || !errors.Is(err, ErrIncorrectMaterial) || me.Spec != spec {
					t.Fatalf("%s: untyped error %v", spec, err)
				}
				continue
			}
			info := MustLookup(spec)
			switch info.Format {
			case MaterialRaw:
				if len(m.Secret) < info.MinKeyBytes || len(m.Secret) > info.MaxKeyBytes {
					t.Fatalf("%s: accepted %d bytes", spec, len(m.Secret))
				}
			case MaterialPKCS8:
				if m.Private == nil || len(m.PublicDER) == 0 || !m.Equal(m) {
					t.Fatalf("%s: accepted inconsistent material", spec)
				}
			}
		}
	})
}
