package secp256k1

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Errors callers can branch on (they are wrapped, use errors.Is).
var (
	// ErrInvalidPublicKey: a point that is malformed, not on the curve, or the point at infinity.
	ErrInvalidPublicKey = errors.New("secp256k1: invalid public key")
	// ErrInvalidPrivateKey: a private scalar outside [1, N-1].
	ErrInvalidPrivateKey = errors.New("secp256k1: invalid private key")
	// ErrPublicKeyMismatch: an encoded public key that is not D·G for the encoded private scalar.
	ErrPublicKeyMismatch = errors.New("secp256k1: public key does not match private key")
)

// PublicKey is a point on secp256k1.
type PublicKey struct {
	X, Y *big.Int
}

// PrivateKey is a secp256k1 key pair; D is the private scalar in [1, N-1].
type PrivateKey struct {
	PublicKey
	D *big.Int
}

var (
	_ crypto.Signer     = (*PrivateKey)(nil)
	_ crypto.PublicKey  = (*PublicKey)(nil)
	_ crypto.PrivateKey = (*PrivateKey)(nil)
)

// GenerateKey returns a fresh key pair with D uniform in [1, N-1], read from
// random (crypto/rand if nil) by rejection sampling.
func GenerateKey(random io.Reader) (*PrivateKey, error) {
	if random == nil {
		random = rand.Reader
	}
	buf := make([]byte, ByteSize)
	for range 1000 {
		if _, err := io.ReadFull(random, buf); err != nil {
			return nil, fmt.Errorf("secp256k1: read randomness: %w", err)
		}
		d := new(big.Int).SetBytes(buf)
		if d.Sign() > 0 && d.Cmp(orderN) < 0 {
			return NewPrivateKey(d)
		}
	}
	return nil, errors.New("secp256k1: random source keeps returning out-of-range scalars")
}

// NewPrivateKey returns the key pair for scalar d, which must be in [1, N-1].
func NewPrivateKey(d *big.Int) (*PrivateKey, error) {
	if !validScalar(d) {
		return nil, fmt.Errorf("%w: scalar out of range [1, N-1]", ErrInvalidPrivateKey)
	}
	x, y := ScalarBaseMult(d)
	return &PrivateKey{PublicKey: PublicKey{X: x, Y: y}, D: new(big.Int).Set(d)}, nil
}

// ParseRawPrivateKey parses a big-endian scalar of exactly ByteSize bytes
// (SEC 1 section 2.3.6) and derives the public key.
func ParseRawPrivateKey(b []byte) (*PrivateKey, error) {
	if len(b) != ByteSize {
		return nil, fmt.Errorf("%w: scalar is %d bytes, want %d", ErrInvalidPrivateKey, len(b), ByteSize)
	}
	return NewPrivateKey(new(big.Int).SetBytes(b))
}

func validScalar(d *big.Int) bool {
	return d != nil && d.Sign() > 0 && d.Cmp(orderN) < 0
}

// Public returns the public half; it implements crypto.Signer.
func (priv *PrivateKey) Public() crypto.PublicKey { return &priv.PublicKey }

// Bytes returns the private scalar as ByteSize big-endian bytes.
func (priv *PrivateKey) Bytes() []byte {
	return priv.D.FillBytes(make([]byte, ByteSize))
}

// Equal reports whether priv and x are the same secp256k1 key (constant-time
// comparison of the scalars).
func (priv *PrivateKey) Equal(x crypto.PrivateKey) bool {
	o, ok := x.(*PrivateKey)
	if !ok || priv == nil || o == nil || !validScalar(priv.D) || !validScalar(o.D) {
		return false
	}
	return subtle.ConstantTimeCompare(priv.Bytes(), o.Bytes()) == 1
}

// Equal reports whether pub and x are the same point.
func (pub *PublicKey) Equal(x crypto.PublicKey) bool {
	o, ok := x.(*PublicKey)
	if !ok || pub == nil || o == nil || pub.X == nil || pub.Y == nil || o.X == nil || o.Y == nil {
		return false
	}
	return pub.X.Cmp(o.X) == 0 && pub.Y.Cmp(o.Y) == 0
}

// Bytes returns the uncompressed SEC 1 encoding 0x04 || X || Y.
func (pub *PublicKey) Bytes() []byte {
	out := make([]byte, 1+2*ByteSize)
	out[0] = 4
	pub.X.FillBytes(out[1 : 1+ByteSize])
	pub.Y.FillBytes(out[1+ByteSize:])
	return out
}

// CompressedBytes returns the compressed SEC 1 encoding (0x02|0x03) || X.
func (pub *PublicKey) CompressedBytes() []byte {
	out := make([]byte, 1+ByteSize)
	out[0] = byte(2 + pub.Y.Bit(0))
	pub.X.FillBytes(out[1:])
	return out
}

// ParsePublicKey parses a SEC 1 point encoding, uncompressed (65 bytes, 0x04)
// or compressed (33 bytes, 0x02 or 0x03), and checks the point is on the curve.
func ParsePublicKey(b []byte) (*PublicKey, error) {
	switch {
	case len(b) == 1+2*ByteSize && b[0] == 4:
		x := new(big.Int).SetBytes(b[1 : 1+ByteSize])
		y := new(big.Int).SetBytes(b[1+ByteSize:])
		if !IsOnCurve(x, y) {
			return nil, fmt.Errorf("%w: point is not on the curve", ErrInvalidPublicKey)
		}
		return &PublicKey{X: x, Y: y}, nil
	case len(b) == 1+ByteSize && (b[0] == 2 || b[0] == 3):
		x := new(big.Int).SetBytes(b[1:])
		y, ok := decompress(x, b[0] == 3)
		if !ok {
			return nil, fmt.Errorf("%w: x is not the abscissa of a curve point", ErrInvalidPublicKey)
		}
		return &PublicKey{X: x, Y: y}, nil
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty point encoding", ErrInvalidPublicKey)
	}
	return nil, fmt.Errorf("%w: %d-byte point encoding with prefix 0x%02x (want 65 bytes 0x04 or 33 bytes 0x02/0x03)", ErrInvalidPublicKey, len(b), b[0])
}

// checkPublicKey verifies that pub is a usable point.
func checkPublicKey(pub *PublicKey) error {
	if pub == nil || !IsOnCurve(pub.X, pub.Y) {
		return fmt.Errorf("%w: point is not on the curve", ErrInvalidPublicKey)
	}
	return nil
}
