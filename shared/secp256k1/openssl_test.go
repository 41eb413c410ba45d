package secp256k1

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// These tests use the openssl command line (installed on every build
// machine) as an independent implementation of secp256k1.

func openssl(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslKey generates a secp256k1 key with openssl and returns its PKCS#8
// DER (openssl keeps the public key in it) and SPKI DER.
func opensslKey(t *testing.T, dir string) (pkcs8, spki []byte) {
	t.Helper()
	pem := filepath.Join(dir, "k.pem")
	openssl(t, "ecparam", "-name", "secp256k1", "-genkey", "-noout", "-out", pem)
	pkcs8 = openssl(t, "pkcs8", "-topk8", "-nocrypt", "-outform", "der", "-in", pem)
	spki = openssl(t, "pkey", "-in", pem, "-pubout", "-outform", "der")
	return pkcs8, spki
}

// TestOpenSSLDerivesSamePublicKey gives openssl PKCS#8 keys WITHOUT the
// public key (so openssl must compute D·G itself) and compares its SPKI with
// ours: an independent check of the scalar multiplication.
func TestOpenSSLDerivesSamePublicKey(t *testing.T) {
	dir := t.TempDir()
	scalars := []*big.Int{big.NewInt(1), big.NewInt(2), big.NewInt(3), new(big.Int).Sub(orderN, big.NewInt(1))}
	for range 3 {
		scalars = append(scalars, randScalar(t))
	}
	for _, d := range scalars {
		priv, err := NewPrivateKey(d)
		if err != nil {
			t.Fatal(err)
		}
		der, err := MarshalPKCS8PrivateKey(priv, false)
		if err != nil {
			t.Fatal(err)
		}
		in := write(t, dir, "nopub.der", der)
		theirs := openssl(t, "pkey", "-inform", "der", "-in", in, "-pubout", "-outform", "der")
		ours, err := MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(theirs, ours) {
			t.Fatalf("d=%X: openssl SPKI %X, ours %X", d, theirs, ours)
		}
		// openssl keeps the public key absent when it re-encodes such a
		// key (it does not add it back), byte for byte as we encode it.
		reenc := openssl(t, "pkcs8", "-topk8", "-nocrypt", "-inform", "der", "-in", in, "-outform", "der")
		if !bytes.Equal(reenc, der) {
			t.Fatalf("d=%X: openssl PKCS#8 %X, ours %X", d, reenc, der)
		}
	}
}

// TestOpenSSLPKCS8RoundTrip parses openssl's PKCS#8 and SPKI and re-encodes
// them byte for byte.
func TestOpenSSLPKCS8RoundTrip(t *testing.T) {
	for range 3 {
		dir := t.TempDir()
		pkcs8, spki := opensslKey(t, dir)
		priv, err := ParsePKCS8PrivateKey(pkcs8)
		if err != nil {
			t.Fatal(err)
		}
		again, err := MarshalPKCS8PrivateKey(priv, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, pkcs8) {
			t.Fatalf("PKCS#8 re-encoding differs:\nopenssl %X\nours    %X", pkcs8, again)
		}
		pub, err := ParsePKIXPublicKey(spki)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(&priv.PublicKey) {
			t.Fatal("openssl SPKI is not the public key of openssl PKCS#8")
		}
		ours, _ := MarshalPKIXPublicKey(pub)
		if !bytes.Equal(ours, spki) {
			t.Fatalf("SPKI re-encoding differs:\nopenssl %X\nours    %X", spki, ours)
		}
	}
}

func TestOpenSSLSignGoVerify(t *testing.T) {
	dir := t.TempDir()
	pkcs8, spki := opensslKey(t, dir)
	keyPath := write(t, dir, "k.der", pkcs8)
	pub, err := ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		msg := make([]byte, 100+i)
		rand.Read(msg)
		msgPath := write(t, dir, "msg", msg)
		sig := openssl(t, "dgst", "-sha256", "-keyform", "der", "-sign", keyPath, msgPath)
		digest := sha256.Sum256(msg)
		if !Verify(pub, digest[:], sig) {
			t.Fatalf("round %d: Go rejected an openssl signature %X", i, sig)
		}
		digest[5] ^= 1
		if Verify(pub, digest[:], sig) {
			t.Fatalf("round %d: Go accepted an openssl signature for another digest", i)
		}
	}
}

func TestGoSignOpenSSLVerify(t *testing.T) {
	dir := t.TempDir()
	priv, _ := GenerateKey(nil)
	spki, err := MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPath := write(t, dir, "pub.der", spki)
	for i := range 5 {
		msg := make([]byte, 50+i)
		rand.Read(msg)
		msgPath := write(t, dir, "msg", msg)
		digest := sha256.Sum256(msg)
		sig, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		sigPath := write(t, dir, "sig", sig)
		out := openssl(t, "dgst", "-sha256", "-keyform", "der", "-verify", pubPath, "-signature", sigPath, msgPath)
		if !bytes.Contains(out, []byte("Verified OK")) {
			t.Fatalf("round %d: openssl says %q", i, out)
		}
		// A corrupted signature must fail in openssl too (exit status 1).
		bad := append([]byte(nil), sig...)
		bad[len(bad)-1] ^= 1
		write(t, dir, "sig", bad)
		cmd := exec.Command("openssl", "dgst", "-sha256", "-keyform", "der", "-verify", pubPath, "-signature", sigPath, msgPath)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("round %d: openssl verified a corrupted signature: %s", i, out)
		}
	}
}
