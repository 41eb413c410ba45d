package secp256k1

import (
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/keyferry/keyferry/shared/pkcs8"
)

// privateKeyInfo and ecPrivateKey are the shared ASN.1 shapes (shared/pkcs8).
type (
	privateKeyInfo = pkcs8.PrivateKeyInfo
	ecPrivateKey   = pkcs8.ECPrivateKey
)

// ecPrivateKeyVersion is the only ECPrivateKey version (ecPrivkeyVer1).
const ecPrivateKeyVersion = pkcs8.ECPrivateKeyVersion

// MarshalPKCS8PrivateKey encodes priv as DER PKCS#8 PrivateKeyInfo with the
// algorithm id-ecPublicKey / secp256k1 and an RFC 5915 ECPrivateKey holding
// the 32-byte scalar. With includePublic the ECPrivateKey also carries the
// uncompressed public key in its optional [1] field (what `openssl pkcs8
// -topk8` emits); without it the encoding matches what SoftHSM's C_WrapKey
// produces for EC keys.
func MarshalPKCS8PrivateKey(priv *PrivateKey, includePublic bool) ([]byte, error) {
	if priv == nil || !validScalar(priv.D) {
		return nil, fmt.Errorf("%w: scalar out of range [1, N-1]", ErrInvalidPrivateKey)
	}
	inner := ecPrivateKey{Version: ecPrivateKeyVersion, PrivateKey: priv.Bytes()}
	if includePublic {
		x, y := ScalarBaseMult(priv.D)
		point := (&PublicKey{X: x, Y: y}).Bytes()
		inner.PublicKey = asn1.BitString{Bytes: point, BitLength: 8 * len(point)}
	}
	innerDER, err := asn1.Marshal(inner)
	if err != nil {
		return nil, fmt.Errorf("secp256k1: encode ECPrivateKey: %w", err)
	}
	alg, err := algorithmIdentifier()
	if err != nil {
		return nil, fmt.Errorf("secp256k1: encode algorithm: %w", err)
	}
	der, err := asn1.Marshal(privateKeyInfo{Algorithm: alg, PrivateKey: innerDER})
	if err != nil {
		return nil, fmt.Errorf("secp256k1: encode PrivateKeyInfo: %w", err)
	}
	return der, nil
}

// ParsePKCS8PrivateKey parses a DER PKCS#8 secp256k1 private key. The scalar
// must be in [1, N-1] (leading zero bytes beyond 32 are tolerated, as are
// scalars shorter than 32 bytes, as Go's crypto/x509 does); inner curve
// parameters, if present, must name secp256k1; an embedded public key (the
// ECPrivateKey [1] field, or the RFC 5958 [1] field) is optional but, if
// present, must be a point on the curve equal to D·G.
func ParsePKCS8PrivateKey(der []byte) (*PrivateKey, error) {
	var info privateKeyInfo
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil {
		return nil, fmt.Errorf("secp256k1: parse PKCS#8 PrivateKeyInfo: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("secp256k1: %d trailing bytes after PKCS#8 PrivateKeyInfo", len(rest))
	}
	if info.Version != 0 && info.Version != 1 {
		return nil, fmt.Errorf("secp256k1: unknown PKCS#8 version %d", info.Version)
	}
	if err := checkAlgorithm(info.Algorithm); err != nil {
		return nil, err
	}
	var inner ecPrivateKey
	rest, err = asn1.Unmarshal(info.PrivateKey, &inner)
	if err != nil {
		return nil, fmt.Errorf("secp256k1: parse ECPrivateKey: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("secp256k1: %d trailing bytes after ECPrivateKey", len(rest))
	}
	if inner.Version != ecPrivateKeyVersion {
		return nil, fmt.Errorf("secp256k1: unknown ECPrivateKey version %d", inner.Version)
	}
	if len(inner.Parameters) != 0 && !inner.Parameters.Equal(OIDNamedCurveSecp256k1) {
		return nil, fmt.Errorf("%w: ECPrivateKey names curve %v", ErrNotSecp256k1, inner.Parameters)
	}
	scalar := inner.PrivateKey
	for len(scalar) > ByteSize && scalar[0] == 0 {
		scalar = scalar[1:]
	}
	if len(scalar) > ByteSize {
		return nil, fmt.Errorf("%w: scalar is %d bytes, want at most %d", ErrInvalidPrivateKey, len(inner.PrivateKey), ByteSize)
	}
	priv, err := NewPrivateKey(new(big.Int).SetBytes(scalar))
	if err != nil {
		return nil, err
	}
	for _, embedded := range []asn1.BitString{inner.PublicKey, info.PublicKey} {
		if embedded.BitLength == 0 && len(embedded.Bytes) == 0 {
			continue
		}
		if err := matchEmbedded(&priv.PublicKey, embedded); err != nil {
			return nil, err
		}
	}
	return priv, nil
}

// matchEmbedded checks an encoded public key against the derived one.
func matchEmbedded(derived *PublicKey, embedded asn1.BitString) error {
	if embedded.BitLength%8 != 0 {
		return fmt.Errorf("%w: embedded public key BIT STRING has %d bits", ErrInvalidPublicKey, embedded.BitLength)
	}
	pub, err := ParsePublicKey(embedded.Bytes)
	if err != nil {
		return fmt.Errorf("embedded public key: %w", err)
	}
	if !pub.Equal(derived) {
		return ErrPublicKeyMismatch
	}
	return nil
}
