package secp256k1

import (
	"bytes"
	"errors"
	"math/big"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	priv, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !validScalar(priv.D) || !IsOnCurve(priv.X, priv.Y) {
		t.Fatal("generated key out of range or off curve")
	}
	x, y := ScalarBaseMult(priv.D)
	if x.Cmp(priv.X) != 0 || y.Cmp(priv.Y) != 0 {
		t.Fatal("public key is not D·G")
	}
	// A reader that yields N (out of range) first, then 1, must give D = 1.
	stream := append(orderN.FillBytes(make([]byte, 32)), big.NewInt(1).FillBytes(make([]byte, 32))...)
	k, err := GenerateKey(bytes.NewReader(stream))
	if err != nil || k.D.Cmp(big.NewInt(1)) != 0 {
		t.Fatalf("rejection sampling: D = %v, err %v", k, err)
	}
	if _, err := GenerateKey(bytes.NewReader(nil)); err == nil {
		t.Fatal("GenerateKey succeeded on an empty reader")
	}
}

func TestNewPrivateKeyRange(t *testing.T) {
	tests := []struct {
		name string
		d    *big.Int
		ok   bool
	}{
		{"1", big.NewInt(1), true},
		{"N-1", new(big.Int).Sub(orderN, big.NewInt(1)), true},
		{"0", big.NewInt(0), false},
		{"N", new(big.Int).Set(orderN), false},
		{"-1", big.NewInt(-1), false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPrivateKey(tc.d)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidPrivateKey) {
				t.Fatalf("err %v is not ErrInvalidPrivateKey", err)
			}
		})
	}
	if _, err := ParseRawPrivateKey(make([]byte, 31)); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Fatalf("31-byte raw scalar: %v", err)
	}
}

func TestParsePublicKey(t *testing.T) {
	priv, _ := GenerateKey(nil)
	unc := priv.PublicKey.Bytes()
	cmp := priv.PublicKey.CompressedBytes()
	flipped := append([]byte(nil), cmp...)
	flipped[0] ^= 1 // other parity: the negated point
	offCurve := append([]byte(nil), unc...)
	offCurve[64] ^= 1
	bigX := append([]byte{4}, fieldP.FillBytes(make([]byte, 32))...)
	bigX = append(bigX, unc[33:]...)
	hybrid := append([]byte(nil), unc...)
	hybrid[0] = 6

	tests := []struct {
		name string
		in   []byte
		ok   bool
		neg  bool
	}{
		{"uncompressed", unc, true, false},
		{"compressed", cmp, true, false},
		{"compressed other parity", flipped, true, true},
		{"off curve", offCurve, false, false},
		{"x = P", bigX, false, false},
		{"hybrid 0x06 prefix", hybrid, false, false},
		{"infinity 0x00", []byte{0}, false, false},
		{"empty", nil, false, false},
		{"truncated", unc[:64], false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParsePublicKey(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidPublicKey) {
					t.Fatalf("err %v is not ErrInvalidPublicKey", err)
				}
				return
			}
			if pub.Equal(&priv.PublicKey) == tc.neg {
				t.Fatalf("parsed point equal=%v, want %v", !tc.neg, !tc.neg)
			}
		})
	}
}

func TestKeyEqual(t *testing.T) {
	a, _ := GenerateKey(nil)
	b, _ := GenerateKey(nil)
	a2, _ := NewPrivateKey(a.D)
	if !a.Equal(a2) || a.Equal(b) || a.Equal(nil) || a.Equal("x") {
		t.Fatal("PrivateKey.Equal wrong")
	}
	if !a.PublicKey.Equal(&a2.PublicKey) || a.PublicKey.Equal(&b.PublicKey) || a.PublicKey.Equal(a.PublicKey) {
		t.Fatal("PublicKey.Equal wrong (value, not pointer, must not be equal)")
	}
}
