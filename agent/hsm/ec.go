package hsm

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Named-curve OIDs (RFC 5480, SEC 2).
var (
	oidP256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384      = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidP521      = asn1.ObjectIdentifier{1, 3, 132, 0, 35}
	oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	oidECPublic  = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

// curveOID maps keyspec curve names to OIDs.
func curveOID(curve string) (asn1.ObjectIdentifier, error) {
	switch curve {
	case "P-256":
		return oidP256, nil
	case "P-384":
		return oidP384, nil
	case "P-521":
		return oidP521, nil
	case "secp256k1":
		return oidSecp256k1, nil
	}
	return nil, fmt.Errorf("hsm: unknown curve %q", curve)
}

// curveName maps an OID back to the keyspec curve name.
func curveName(oid asn1.ObjectIdentifier) (string, bool) {
	for _, c := range []string{"P-256", "P-384", "P-521", "secp256k1"} {
		o, _ := curveOID(c)
		if o.Equal(oid) {
			return c, true
		}
	}
	return "", false
}

// ecParams returns CKA_EC_PARAMS for a curve: the DER-encoded named-curve OID.
func ecParams(curve string) ([]byte, error) {
	oid, err := curveOID(curve)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(oid)
}

// ecPointFromAttr unwraps CKA_EC_POINT. PKCS#11 says it is a DER OCTET
// STRING holding the uncompressed point; some tokens return the raw point.
func ecPointFromAttr(v []byte) ([]byte, error) {
	if len(v) > 0 && v[0] == 0x04 && len(v)%2 == 1 {
		// Could be a raw uncompressed point; a DER OCTET STRING starts with
		// 0x04 too, so try DER first and fall back.
		var inner []byte
		if rest, err := asn1.Unmarshal(v, &inner); err == nil && len(rest) == 0 && len(inner) > 0 && inner[0] == 0x04 {
			return inner, nil
		}
		return v, nil
	}
	var inner []byte
	rest, err := asn1.Unmarshal(v, &inner)
	if err != nil {
		return nil, fmt.Errorf("hsm: CKA_EC_POINT: %w", err)
	}
	if len(rest) != 0 || len(inner) == 0 || inner[0] != 0x04 {
		return nil, errors.New("hsm: CKA_EC_POINT is not an uncompressed point")
	}
	return inner, nil
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue
}

type subjectPublicKeyInfo struct {
	Algorithm algorithmIdentifier
	PublicKey asn1.BitString
}

// ecSPKI builds the DER SubjectPublicKeyInfo (RFC 5480) of an EC public key
// from CKA_EC_PARAMS (the DER named-curve OID) and the uncompressed point.
// It is what x509.MarshalPKIXPublicKey produces for NIST curves and what
// KMS GetPublicKey returns for ECC_SECG_P256K1 as well.
func ecSPKI(params, point []byte) ([]byte, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(params, &oid)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("hsm: CKA_EC_PARAMS is not a named-curve OID")
	}
	if _, ok := curveName(oid); !ok {
		return nil, fmt.Errorf("hsm: CKA_EC_PARAMS names unsupported curve %v", oid)
	}
	return asn1.Marshal(subjectPublicKeyInfo{
		Algorithm: algorithmIdentifier{Algorithm: oidECPublic, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)},
	})
}

// rawToDER converts PKCS#11's raw r||s into an ASN.1 DER Ecdsa-Sig-Value.
func rawToDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("hsm: raw ECDSA signature is %d bytes, want r||s", len(raw))
	}
	n := len(raw) / 2
	r, s := new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("hsm: raw ECDSA signature has a zero half")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}
