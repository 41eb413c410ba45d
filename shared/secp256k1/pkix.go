package secp256k1

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Object identifiers of the EC encodings.
var (
	// OIDPublicKeyECDSA is id-ecPublicKey (RFC 5480).
	OIDPublicKeyECDSA = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	// OIDNamedCurveSecp256k1 is secp256k1 (SEC 2, certicom-arc curve 10).
	OIDNamedCurveSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// ErrNotSecp256k1 is returned (wrapped) for a well-formed key of another
// algorithm or another curve.
var ErrNotSecp256k1 = errors.New("secp256k1: not a secp256k1 key")

// subjectPublicKeyInfo is the X.509 SubjectPublicKeyInfo.
type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

func algorithmIdentifier() (pkix.AlgorithmIdentifier, error) {
	params, err := asn1.Marshal(OIDNamedCurveSecp256k1)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: OIDPublicKeyECDSA, Parameters: asn1.RawValue{FullBytes: params}}, nil
}

// checkAlgorithm requires id-ecPublicKey with the namedCurve secp256k1.
func checkAlgorithm(a pkix.AlgorithmIdentifier) error {
	if !a.Algorithm.Equal(OIDPublicKeyECDSA) {
		return fmt.Errorf("%w: algorithm %v is not id-ecPublicKey", ErrNotSecp256k1, a.Algorithm)
	}
	var curve asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(a.Parameters.FullBytes, &curve)
	if err != nil || len(rest) != 0 {
		return fmt.Errorf("%w: EC parameters are not a named curve OID", ErrNotSecp256k1)
	}
	if !curve.Equal(OIDNamedCurveSecp256k1) {
		return fmt.Errorf("%w: named curve %v", ErrNotSecp256k1, curve)
	}
	return nil
}

// MarshalPKIXPublicKey encodes pub as a DER SubjectPublicKeyInfo with
// id-ecPublicKey, namedCurve secp256k1 and the uncompressed point, the form
// KMS GetPublicKey returns for ECC_SECG_P256K1.
func MarshalPKIXPublicKey(pub *PublicKey) ([]byte, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	alg, err := algorithmIdentifier()
	if err != nil {
		return nil, fmt.Errorf("secp256k1: encode algorithm: %w", err)
	}
	point := pub.Bytes()
	der, err := asn1.Marshal(subjectPublicKeyInfo{Algorithm: alg, PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
	if err != nil {
		return nil, fmt.Errorf("secp256k1: encode public key: %w", err)
	}
	return der, nil
}

// ParsePKIXPublicKey parses a DER SubjectPublicKeyInfo holding a secp256k1
// point (uncompressed or compressed) and checks the point is on the curve.
func ParsePKIXPublicKey(der []byte) (*PublicKey, error) {
	var spki subjectPublicKeyInfo
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil {
		return nil, fmt.Errorf("secp256k1: parse SubjectPublicKeyInfo: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("secp256k1: %d trailing bytes after SubjectPublicKeyInfo", len(rest))
	}
	if err := checkAlgorithm(spki.Algorithm); err != nil {
		return nil, err
	}
	if spki.PublicKey.BitLength%8 != 0 {
		return nil, fmt.Errorf("%w: public key BIT STRING has %d bits", ErrInvalidPublicKey, spki.PublicKey.BitLength)
	}
	return ParsePublicKey(spki.PublicKey.Bytes)
}
