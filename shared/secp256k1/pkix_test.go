package secp256k1

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
)

func spki(t *testing.T, curve asn1.ObjectIdentifier, point []byte, bits int) []byte {
	t.Helper()
	params, err := asn1.Marshal(curve)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(subjectPublicKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: OIDPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: point, BitLength: bits},
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPKIXPublicKey(t *testing.T) {
	priv, _ := GenerateKey(nil)
	good, err := MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	offCurve := priv.PublicKey.Bytes()
	offCurve[40] ^= 0x80

	tests := []struct {
		name    string
		der     []byte
		wantErr error
	}{
		{"marshalled", good, nil},
		{"compressed point", spki(t, OIDNamedCurveSecp256k1, priv.CompressedBytes(), 33*8), nil},
		{"P-256 key", p256DER, ErrNotSecp256k1},
		{"P-256 OID with secp256k1 point", spki(t, asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, priv.Bytes(), 65*8), ErrNotSecp256k1},
		{"off curve", spki(t, OIDNamedCurveSecp256k1, offCurve, 65*8), ErrInvalidPublicKey},
		{"odd bit length", spki(t, OIDNamedCurveSecp256k1, priv.Bytes(), 65*8-1), nil},
		{"trailing bytes", append(append([]byte(nil), good...), 0), nil},
		{"garbage", []byte("not der"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParsePKIXPublicKey(tc.der)
			if tc.name == "marshalled" || tc.name == "compressed point" {
				if err != nil {
					t.Fatal(err)
				}
				if !pub.Equal(&priv.PublicKey) {
					t.Fatal("round trip changed the key")
				}
				return
			}
			if err == nil {
				t.Fatal("parse succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := MarshalPKIXPublicKey(&PublicKey{X: priv.X, Y: priv.X}); !errors.Is(err, ErrInvalidPublicKey) {
		t.Fatalf("marshal of off-curve point: %v", err)
	}
}

// FuzzParsePKIXPublicKey: any bytes either fail or give a point on the curve
// that re-encodes and re-parses to itself.
func FuzzParsePKIXPublicKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := ParsePKIXPublicKey(der)
		if err != nil {
			return
		}
		if !IsOnCurve(pub.X, pub.Y) {
			t.Fatal("parsed point off curve")
		}
		again, err := MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePKIXPublicKey(again)
		if err != nil || !back.Equal(pub) {
			t.Fatalf("re-encoding does not round trip: %v", err)
		}
	})
}
