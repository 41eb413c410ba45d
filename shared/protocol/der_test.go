package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
)

// TestRawToDERAgainstCryptoECDSA: converting crypto/ecdsa's signatures in
// both directions keeps them verifiable, for every NIST curve size.
func TestRawToDERAgainstCryptoECDSA(t *testing.T) {
	curves := []struct {
		c    elliptic.Curve
		size int
	}{{elliptic.P256(), 32}, {elliptic.P384(), 48}, {elliptic.P521(), 66}}
	for _, tc := range curves {
		t.Run(tc.c.Params().Name, func(t *testing.T) {
			key, err := ecdsa.GenerateKey(tc.c, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			sawShort := false
			for i := 0; i < 64; i++ {
				digest := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
				der, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
				if err != nil {
					t.Fatal(err)
				}
				raw, err := DERToRaw(der, tc.size)
				if err != nil {
					t.Fatal(err)
				}
				if len(raw) != 2*tc.size {
					t.Fatalf("raw is %d bytes", len(raw))
				}
				r := new(big.Int).SetBytes(raw[:tc.size])
				s := new(big.Int).SetBytes(raw[tc.size:])
				if !ecdsa.Verify(&key.PublicKey, digest[:], r, s) {
					t.Fatal("DERToRaw output does not verify")
				}
				sawShort = sawShort || raw[0] == 0 || raw[tc.size] == 0
				back, err := RawToDER(raw)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(back, der) {
					t.Fatalf("RawToDER(DERToRaw(x)) != x:\n%x\n%x", back, der)
				}
				if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], back) {
					t.Fatal("RawToDER output does not verify")
				}
			}
			if !sawShort {
				t.Log("no r or s with a leading zero byte in 64 signatures (TestRawToDERLeadingZeroes covers it)")
			}
		})
	}
}

func TestRawToDERLeadingZeroes(t *testing.T) {
	raw := make([]byte, 64)
	raw[31], raw[32] = 1, 0x80 // r = 1, s has the high bit set (needs a 0x00 pad in DER)
	der, err := RawToDER(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x30, 0x26, 0x02, 0x01, 0x01, 0x02, 0x21, 0x00, 0x80}
	if !bytes.HasPrefix(der, want) {
		t.Fatalf("der = %x, want prefix %x", der, want)
	}
	back, err := DERToRaw(der, 32)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("back = %x, %v", back, err)
	}
}

func TestDERConversionRejects(t *testing.T) {
	good, _ := RawToDER(bytes.Repeat([]byte{7}, 64))
	tests := []struct {
		name string
		fn   func() error
	}{
		{"raw empty", func() error { _, err := RawToDER(nil); return err }},
		{"raw odd length", func() error { _, err := RawToDER(make([]byte, 63)); return err }},
		{"raw zero r", func() error { _, err := RawToDER(append(make([]byte, 32), bytes.Repeat([]byte{1}, 32)...)); return err }},
		{"der garbage", func() error { _, err := DERToRaw([]byte{1, 2, 3}, 32); return err }},
		{"der trailing byte", func() error { _, err := DERToRaw(append(good[:len(good):len(good)], 0), 32); return err }},
		{"der too big for size", func() error { _, err := DERToRaw(good, 16); return err }},
		{"der zero size", func() error { _, err := DERToRaw(good, 0); return err }},
		{"der non-minimal integer", func() error {
			_, err := DERToRaw([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}, 32)
			return err
		}},
		{"der negative", func() error {
			_, err := DERToRaw([]byte{0x30, 0x06, 0x02, 0x01, 0xff, 0x02, 0x01, 0x01}, 32)
			return err
		}},
	}
	for _, tc := range tests {
		if err := tc.fn(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
