package secp256k1

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"testing"
)

// TestSignRFC6979Vector checks the deterministic nonce (random == nil)
// against the widely published secp256k1 RFC 6979 vector: private key 1,
// SHA-256("Satoshi Nakamoto"), low-S signature.
func TestSignRFC6979Vector(t *testing.T) {
	tests := []struct {
		name string
		d    *big.Int
		msg  string
		sig  string
	}{
		{"d=1 Satoshi Nakamoto", big.NewInt(1), "Satoshi Nakamoto",
			"3045022100934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d802202442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			priv, err := NewPrivateKey(tc.d)
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256([]byte(tc.msg))
			sig, err := priv.Sign(nil, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sig); got != tc.sig {
				t.Fatalf("signature\n got %s\nwant %s", got, tc.sig)
			}
			if !Verify(&priv.PublicKey, digest[:], sig) {
				t.Fatal("Verify rejected the vector")
			}
		})
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	priv, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s256 := sha256.Sum256([]byte("keyferry"))
	s512 := sha512.Sum512([]byte("keyferry"))
	tests := []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"sha256", s256[:], crypto.SHA256},
		{"sha512 truncated to 256 bits", s512[:], crypto.SHA512},
		{"short digest no opts", s256[:20], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var signer crypto.Signer = priv
			sig, err := signer.Sign(rand.Reader, tc.digest, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			pub := signer.Public().(*PublicKey)
			if !Verify(pub, tc.digest, sig) {
				t.Fatal("Verify rejected a fresh signature")
			}
			var rs ecdsaSignature
			if _, err := asn1.Unmarshal(sig, &rs); err != nil {
				t.Fatal(err)
			}
			if rs.S.Cmp(halfN) > 0 {
				t.Fatal("signature is not low-S")
			}
			other := append([]byte(nil), tc.digest...)
			other[0] ^= 1
			if Verify(pub, other, sig) {
				t.Fatal("Verify accepted the signature for another digest")
			}
		})
	}
	// Hedged signatures differ between calls; deterministic ones do not.
	a, _ := priv.Sign(rand.Reader, s256[:], crypto.SHA256)
	b, _ := priv.Sign(rand.Reader, s256[:], crypto.SHA256)
	if string(a) == string(b) {
		t.Fatal("two hedged signatures are identical")
	}
	c, _ := priv.Sign(nil, s256[:], crypto.SHA256)
	d, _ := priv.Sign(nil, s256[:], crypto.SHA256)
	if string(c) != string(d) {
		t.Fatal("deterministic signatures differ")
	}
}

func TestSignRejectsBadInput(t *testing.T) {
	digest := sha256.Sum256([]byte("x"))
	good, _ := GenerateKey(nil)
	tests := []struct {
		name   string
		priv   *PrivateKey
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"D = 0", &PrivateKey{PublicKey: good.PublicKey, D: big.NewInt(0)}, digest[:], crypto.SHA256},
		{"D = N", &PrivateKey{PublicKey: good.PublicKey, D: new(big.Int).Set(orderN)}, digest[:], crypto.SHA256},
		{"D < 0", &PrivateKey{PublicKey: good.PublicKey, D: big.NewInt(-5)}, digest[:], crypto.SHA256},
		{"D nil", &PrivateKey{PublicKey: good.PublicKey}, digest[:], crypto.SHA256},
		{"nil key", nil, digest[:], crypto.SHA256},
		{"digest length mismatch", good, digest[:20], crypto.SHA256},
		{"empty digest", good, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if sig, err := tc.priv.Sign(rand.Reader, tc.digest, tc.opts); err == nil {
				t.Fatalf("Sign succeeded: %x", sig)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	priv, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("message"))
	sig, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var rs ecdsaSignature
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		t.Fatal(err)
	}
	enc := func(r, s *big.Int) []byte {
		b, err := asn1.Marshal(ecdsaSignature{R: r, S: s})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other, _ := GenerateKey(nil)
	offCurve := &PublicKey{X: priv.X, Y: new(big.Int).Add(priv.Y, big.NewInt(1))}
	highS := enc(rs.R, new(big.Int).Sub(orderN, rs.S))
	berLong := append([]byte{0x30, 0x81, byte(len(sig) - 2)}, sig[2:]...)

	tests := []struct {
		name string
		pub  *PublicKey
		sig  []byte
		want bool
	}{
		{"valid", &priv.PublicKey, sig, true},
		{"high-S accepted", &priv.PublicKey, highS, true},
		{"r = 0", &priv.PublicKey, enc(big.NewInt(0), rs.S), false},
		{"s = 0", &priv.PublicKey, enc(rs.R, big.NewInt(0)), false},
		{"r = N", &priv.PublicKey, enc(new(big.Int).Set(orderN), rs.S), false},
		{"s = N", &priv.PublicKey, enc(rs.R, new(big.Int).Set(orderN)), false},
		{"r + N", &priv.PublicKey, enc(new(big.Int).Add(rs.R, orderN), rs.S), false},
		{"negative r", &priv.PublicKey, enc(new(big.Int).Neg(rs.R), rs.S), false},
		{"trailing byte", &priv.PublicKey, append(append([]byte(nil), sig...), 0), false},
		{"BER long-form length", &priv.PublicKey, berLong, false},
		{"truncated", &priv.PublicKey, sig[:len(sig)-1], false},
		{"empty", &priv.PublicKey, nil, false},
		{"other key", &other.PublicKey, sig, false},
		{"point off curve", offCurve, sig, false},
		{"nil key", nil, sig, false},
		{"infinity key", &PublicKey{X: new(big.Int), Y: new(big.Int)}, sig, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Verify(tc.pub, digest[:], tc.sig); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	priv, _ := GenerateKey(nil)
	digest := sha256.Sum256([]byte("bench"))
	for b.Loop() {
		if _, err := priv.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	priv, _ := GenerateKey(nil)
	digest := sha256.Sum256([]byte("bench"))
	sig, _ := priv.Sign(rand.Reader, digest[:], crypto.SHA256)
	for b.Loop() {
		if !Verify(&priv.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

// FuzzVerify: Verify never panics on any signature bytes and never accepts
// a signature whose r or s is out of range.
func FuzzVerify(f *testing.F) {
	priv, err := NewPrivateKey(big.NewInt(0x1234567))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, digest, sig []byte) {
		if !Verify(&priv.PublicKey, digest, sig) {
			return
		}
		var rs ecdsaSignature
		if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 || !validScalar(rs.R) || !validScalar(rs.S) {
			t.Fatalf("accepted malformed signature %X", sig)
		}
	})
}
