package hsm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"testing"
)

// ecSPKI must equal x509.MarshalPKIXPublicKey for NIST curves, from both
// DER-wrapped and raw CKA_EC_POINT encodings.
func TestECSPKIMatchesX509(t *testing.T) {
	for _, tc := range []struct {
		curve string
		c     elliptic.Curve
	}{{"P-256", elliptic.P256()}, {"P-384", elliptic.P384()}, {"P-521", elliptic.P521()}} {
		k, err := ecdsa.GenerateKey(tc.c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		raw := elliptic.Marshal(tc.c, k.X, k.Y) //nolint:staticcheck // uncompressed point encoding
		wrapped, _ := asn1.Marshal(raw)
		params, _ := ecParams(tc.curve)
		for _, attr := range [][]byte{wrapped, raw} {
			point, err := ecPointFromAttr(attr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ecSPKI(params, point)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: ecSPKI differs from x509 (%v)", tc.curve, err)
			}
		}
	}
	if _, err := ecSPKI([]byte{0x06, 0x01, 0x00}, []byte{4}); err == nil {
		t.Fatal("unknown curve accepted")
	}
}

func TestRawToDER(t *testing.T) {
	der, err := rawToDER(append(bytes.Repeat([]byte{0}, 31), append([]byte{1}, append(bytes.Repeat([]byte{0}, 31), 2)...)...))
	if err != nil || !bytes.Equal(der, []byte{0x30, 6, 2, 1, 1, 2, 1, 2}) {
		t.Fatalf("rawToDER = %x, %v", der, err)
	}
	for _, bad := range [][]byte{nil, {1}, make([]byte, 64)} {
		if _, err := rawToDER(bad); err == nil {
			t.Fatalf("rawToDER(%x) accepted", bad)
		}
	}
}
