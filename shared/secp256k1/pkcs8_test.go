package secp256k1

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
)

// buildPKCS8 assembles a PKCS#8 secp256k1 key from raw parts so tests can
// produce encodings MarshalPKCS8PrivateKey never would.
func buildPKCS8(t *testing.T, outerVersion int, curve asn1.ObjectIdentifier, inner ecPrivateKey) []byte {
	t.Helper()
	innerDER, err := asn1.Marshal(inner)
	if err != nil {
		t.Fatal(err)
	}
	alg, _ := algorithmIdentifier()
	if curve != nil {
		params, _ := asn1.Marshal(curve)
		alg.Parameters = asn1.RawValue{FullBytes: params}
	}
	der, err := asn1.Marshal(privateKeyInfo{Version: outerVersion, Algorithm: alg, PrivateKey: innerDER})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func bitString(b []byte) asn1.BitString { return asn1.BitString{Bytes: b, BitLength: 8 * len(b)} }

func TestPKCS8RoundTrip(t *testing.T) {
	for _, includePublic := range []bool{true, false} {
		priv, _ := GenerateKey(nil)
		der, err := MarshalPKCS8PrivateKey(priv, includePublic)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatalf("includePublic=%v: %v", includePublic, err)
		}
		if !got.Equal(priv) || !got.PublicKey.Equal(&priv.PublicKey) {
			t.Fatalf("includePublic=%v: round trip changed the key", includePublic)
		}
	}
}

func TestParsePKCS8Rejects(t *testing.T) {
	priv, _ := GenerateKey(nil)
	other, _ := GenerateKey(nil)
	d := priv.Bytes()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKCS8PrivateKey(p256)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	offCurve := priv.PublicKey.Bytes()
	offCurve[64] ^= 1
	good, _ := MarshalPKCS8PrivateKey(priv, true)

	tests := []struct {
		name    string
		der     []byte
		ok      bool
		wantErr error
	}{
		{"with public key", good, true, nil},
		{"without public key", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: d}), true, nil},
		{"compressed public key", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: d, PublicKey: bitString(priv.CompressedBytes())}), true, nil},
		{"inner params secp256k1", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: d, Parameters: OIDNamedCurveSecp256k1}), true, nil},
		{"PKCS#8 v1 (RFC 5958)", buildPKCS8(t, 1, nil, ecPrivateKey{Version: 1, PrivateKey: d}), true, nil},
		{"leading zero padding", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: append([]byte{0}, d...)}), true, nil},
		{"mismatching public key", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: d, PublicKey: bitString(other.PublicKey.Bytes())}), false, ErrPublicKeyMismatch},
		{"public key off curve", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: d, PublicKey: bitString(offCurve)}), false, ErrInvalidPublicKey},
		{"scalar zero", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: make([]byte, 32)}), false, ErrInvalidPrivateKey},
		{"scalar N", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: orderN.FillBytes(make([]byte, 32))}), false, ErrInvalidPrivateKey},
		{"scalar 33 bytes", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: append([]byte{1}, d...)}), false, ErrInvalidPrivateKey},
		{"inner params P-256", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 1, PrivateKey: d, Parameters: asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}}), false, ErrNotSecp256k1},
		{"outer curve P-256", buildPKCS8(t, 0, asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, ecPrivateKey{Version: 1, PrivateKey: d}), false, ErrNotSecp256k1},
		{"ECPrivateKey version 2", buildPKCS8(t, 0, nil, ecPrivateKey{Version: 2, PrivateKey: d}), false, nil},
		{"PKCS#8 version 2", buildPKCS8(t, 2, nil, ecPrivateKey{Version: 1, PrivateKey: d}), false, nil},
		{"P-256 key", p256DER, false, ErrNotSecp256k1},
		{"RSA key", rsaDER, false, ErrNotSecp256k1},
		{"trailing bytes", append(append([]byte(nil), good...), 0), false, nil},
		{"garbage", []byte{0x30, 0x03, 0x02, 0x01}, false, nil},
		{"empty", nil, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePKCS8PrivateKey(tc.der)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(priv) || !got.PublicKey.Equal(&priv.PublicKey) {
					t.Fatal("parsed a different key")
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
	if _, err := MarshalPKCS8PrivateKey(&PrivateKey{D: big.NewInt(0)}, true); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Fatalf("marshal D=0: %v", err)
	}
}

// FuzzParsePKCS8PrivateKey: any bytes either fail to parse or give a key in
// range whose public key is D·G and which re-encodes and re-parses to itself.
func FuzzParsePKCS8PrivateKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, der []byte) {
		priv, err := ParsePKCS8PrivateKey(der)
		if err != nil {
			return
		}
		if !validScalar(priv.D) || !IsOnCurve(priv.X, priv.Y) {
			t.Fatal("parsed key out of range or off curve")
		}
		for _, pub := range []bool{true, false} {
			again, err := MarshalPKCS8PrivateKey(priv, pub)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePKCS8PrivateKey(again)
			if err != nil || !back.Equal(priv) || !back.PublicKey.Equal(&priv.PublicKey) {
				t.Fatalf("re-encoding does not round trip: %v", err)
			}
		}
	})
}
