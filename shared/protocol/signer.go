package protocol

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Signer produces an ASN.1 DER ECDSA P-256 signature over a SHA-256 digest.
// AWS KMS Sign (ECDSA_SHA_256, MessageType DIGEST) returns exactly that; a
// PKCS#11 CKM_ECDSA signer must convert its raw r||s with RawToDER.
type Signer interface {
	SignDigest(ctx context.Context, digest []byte) ([]byte, error)
}

// ECDSASigner is an in-memory P-256 Signer for tests and the sandbox.
type ECDSASigner struct {
	key *ecdsa.PrivateKey
}

var _ Signer = (*ECDSASigner)(nil)

// NewECDSASigner wraps a P-256 private key.
func NewECDSASigner(key *ecdsa.PrivateKey) (*ECDSASigner, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("protocol: signing key must be an ECDSA P-256 private key")
	}
	return &ECDSASigner{key: key}, nil
}

// GenerateECDSASigner creates a signer with a fresh P-256 key from crypto/rand.
func GenerateECDSASigner() (*ECDSASigner, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("protocol: generate P-256 key: %w", err)
	}
	return &ECDSASigner{key: key}, nil
}

// SignDigest signs a 32-byte SHA-256 digest and returns a DER signature.
func (s *ECDSASigner) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("protocol: digest is %d bytes, want %d", len(digest), sha256.Size)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, digest)
	if err != nil {
		return nil, fmt.Errorf("protocol: ECDSA sign: %w", err)
	}
	return sig, nil
}

// PublicKey returns the signer's public key.
func (s *ECDSASigner) PublicKey() *ecdsa.PublicKey { return &s.key.PublicKey }

// PublicKeyDER returns the signer's public key as DER SubjectPublicKeyInfo.
func (s *ECDSASigner) PublicKeyDER() []byte {
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		panic(err) // P-256 keys always marshal
	}
	return der
}

// Verifier checks envelope signatures against one pinned ECDSA P-256 public key.
type Verifier struct {
	pub *ecdsa.PublicKey
}

// NewVerifier builds a Verifier for a P-256 public key.
func NewVerifier(pub *ecdsa.PublicKey) (*Verifier, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return nil, errors.New("protocol: verifying key must be an ECDSA P-256 public key")
	}
	return &Verifier{pub: pub}, nil
}

// ParseVerifierDER builds a Verifier from a DER SubjectPublicKeyInfo (what
// AWS KMS GetPublicKey and x509.MarshalPKIXPublicKey return).
func ParseVerifierDER(der []byte) (*Verifier, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("protocol: parse verifying key: %w", err)
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("protocol: verifying key is %T, want ECDSA P-256", pub)
	}
	return NewVerifier(ek)
}

// ParseVerifierPEM builds a Verifier from a PEM "PUBLIC KEY" block.
func ParseVerifierPEM(data []byte) (*Verifier, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("protocol: no PEM block in verifying key")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("protocol: PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	return ParseVerifierDER(block.Bytes)
}

// PublicKey returns the pinned public key.
func (v *Verifier) PublicKey() *ecdsa.PublicKey { return v.pub }

// VerifyDigest checks a DER signature over a SHA-256 digest. The error wraps
// ErrBadSignature.
func (v *Verifier) VerifyDigest(digest, sig []byte) error {
	if len(sig) == 0 {
		return fmt.Errorf("%w: no signature", ErrBadSignature)
	}
	if !ecdsa.VerifyASN1(v.pub, digest, sig) {
		return fmt.Errorf("%w: signature does not verify under the pinned key", ErrBadSignature)
	}
	return nil
}

// Verify checks sig over payload for action (see Digest).
func (v *Verifier) Verify(action Action, payload, sig []byte) error {
	return v.VerifyDigest(Digest(action, payload), sig)
}

// sigDomain prefixes every signed digest.
const sigDomain = "keyferry-v1\x00"

// Digest is what an envelope signature covers:
// SHA-256("keyferry-v1\x00" || action || "\x00" || payload), so a signature
// made for one action never verifies for another.
func Digest(action Action, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(sigDomain))
	h.Write([]byte(action))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)
}
