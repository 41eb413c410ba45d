package secp256k1

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// ecdsaSignature is the ASN.1 Ecdsa-Sig-Value of RFC 3279 / SEC 1.
type ecdsaSignature struct {
	R, S *big.Int
}

// Sign signs digest (the hash of the message, computed by the caller) with
// ECDSA and returns the ASN.1 DER Ecdsa-Sig-Value, so *PrivateKey is a
// crypto.Signer. The nonce is derived as in RFC 6979 (HMAC-SHA-256 DRBG over
// the private key and the digest); when random is not nil, 32 bytes read from
// it are added as the RFC 6979 section 3.6 extra input, which hedges against
// both a broken random source and fault attacks. With random == nil the
// signature is the deterministic RFC 6979 one. S is normalised to the lower
// half of [1, N-1] (BIP 62 "low S"); Verify accepts both halves.
//
// If opts names a hash, digest must have that hash's length.
func (priv *PrivateKey) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if priv == nil || !validScalar(priv.D) {
		return nil, fmt.Errorf("%w: scalar out of range [1, N-1]", ErrInvalidPrivateKey)
	}
	if opts != nil {
		if h := opts.HashFunc(); h != 0 && h.Available() && len(digest) != h.Size() {
			return nil, fmt.Errorf("secp256k1: digest is %d bytes, %v wants %d", len(digest), h, h.Size())
		}
	}
	if len(digest) == 0 {
		return nil, errors.New("secp256k1: empty digest")
	}
	var extra []byte
	if random != nil {
		extra = make([]byte, 32)
		if _, err := io.ReadFull(random, extra); err != nil {
			return nil, fmt.Errorf("secp256k1: read randomness: %w", err)
		}
	}
	e := hashToInt(digest)
	nonces := newNonceSource(priv.D, e, extra)
	for range 100 {
		k := nonces.next()
		rx, _ := ScalarBaseMult(k)
		r := new(big.Int).Mod(rx, orderN)
		if r.Sign() == 0 {
			continue
		}
		s := new(big.Int).Mul(r, priv.D)
		s.Add(s, e)
		s.Mul(s, new(big.Int).ModInverse(k, orderN))
		s.Mod(s, orderN)
		if s.Sign() == 0 {
			continue
		}
		if s.Cmp(halfN) > 0 {
			s.Sub(orderN, s)
		}
		der, err := asn1.Marshal(ecdsaSignature{R: r, S: s})
		if err != nil {
			return nil, fmt.Errorf("secp256k1: encode signature: %w", err)
		}
		return der, nil
	}
	return nil, errors.New("secp256k1: no valid nonce found")
}

// Verify reports whether derSig is a valid ASN.1 DER ECDSA signature of
// digest by pub. It rejects points off the curve, r or s outside [1, N-1],
// non-DER encodings and trailing bytes. High-S signatures are accepted.
func Verify(pub *PublicKey, digest []byte, derSig []byte) bool {
	if checkPublicKey(pub) != nil {
		return false
	}
	var sig ecdsaSignature
	rest, err := asn1.Unmarshal(derSig, &sig)
	if err != nil || len(rest) != 0 {
		return false
	}
	return VerifyRS(pub, digest, sig.R, sig.S)
}

// VerifyRS is Verify for an already decoded (r, s) pair.
func VerifyRS(pub *PublicKey, digest []byte, r, s *big.Int) bool {
	if checkPublicKey(pub) != nil || !validScalar(r) || !validScalar(s) {
		return false
	}
	e := hashToInt(digest)
	w := new(big.Int).ModInverse(s, orderN)
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, orderN)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, orderN)
	p := scalarMult(fromAffine(gX, gY), u1).add(scalarMult(fromAffine(pub.X, pub.Y), u2))
	if p.isInfinity() {
		return false
	}
	x, _ := p.affine()
	x.Mod(x, orderN)
	return x.Cmp(r) == 0
}

// hashToInt implements bits2int of RFC 6979 / SEC 1 for a 256-bit order:
// the leftmost 256 bits of the digest as a big-endian integer.
func hashToInt(digest []byte) *big.Int {
	if len(digest) > ByteSize {
		digest = digest[:ByteSize]
	}
	return new(big.Int).SetBytes(digest)
}

// nonceSource is the HMAC_DRBG of RFC 6979 section 3.2 with SHA-256
// (qlen = hlen = 256, so each candidate is one HMAC output).
type nonceSource struct {
	k, v  []byte
	first bool
}

func newNonceSource(d, e *big.Int, extra []byte) *nonceSource {
	x := d.FillBytes(make([]byte, ByteSize))
	h := new(big.Int).Mod(e, orderN).FillBytes(make([]byte, ByteSize)) // bits2octets
	ns := &nonceSource{k: make([]byte, 32), v: make([]byte, 32), first: true}
	for i := range ns.v {
		ns.v[i] = 1
	}
	for _, sep := range []byte{0, 1} {
		ns.k = ns.mac(ns.k, ns.v, []byte{sep}, x, h, extra)
		ns.v = ns.mac(ns.k, ns.v)
	}
	return ns
}

func (ns *nonceSource) mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// next returns the next candidate nonce in [1, N-1].
func (ns *nonceSource) next() *big.Int {
	for {
		if !ns.first {
			ns.k = ns.mac(ns.k, ns.v, []byte{0})
			ns.v = ns.mac(ns.k, ns.v)
		}
		ns.first = false
		ns.v = ns.mac(ns.k, ns.v)
		k := new(big.Int).SetBytes(ns.v)
		if validScalar(k) {
			return k
		}
	}
}
