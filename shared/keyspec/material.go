package keyspec

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/keyferry/keyferry/shared/pkcs8"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// ErrIncorrectMaterial is wrapped by every *MaterialError: the bytes are not
// what KMS accepts for the key spec (KMS answers IncorrectKeyMaterialException).
var ErrIncorrectMaterial = errors.New("keyspec: incorrect key material")

// MaterialError says why key material does not fit its key spec. The Reason
// names the problem (never the key bytes). It matches ErrIncorrectMaterial
// and, when set, Err (the parser's own error) under errors.Is / errors.As.
type MaterialError struct {
	Spec   Spec
	Reason string
	Err    error
}

func (e *MaterialError) Error() string { return "keyspec: incorrect key material: " + e.Reason }

// Unwrap returns ErrIncorrectMaterial and the underlying cause, if any.
func (e *MaterialError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrIncorrectMaterial}
	}
	return []error{ErrIncorrectMaterial, e.Err}
}

// Material is key material that has been checked against its key spec.
type Material struct {
	Spec Spec
	// Secret holds the raw key bytes of SYMMETRIC_DEFAULT and HMAC_* keys.
	Secret []byte
	// Private is the private key of RSA and ECC keys: *rsa.PrivateKey,
	// *ecdsa.PrivateKey or *secp256k1.PrivateKey.
	Private crypto.Signer
	// PublicDER is the DER SubjectPublicKeyInfo of the public key (what KMS
	// GetPublicKey returns), for RSA and ECC keys only.
	PublicDER []byte
}

var _ error = (*MaterialError)(nil)

// Object identifiers of the PKCS#8 algorithms and named curves keyferry meets.
var (
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

	curveOIDs = []struct {
		oid   asn1.ObjectIdentifier
		name  string
		curve elliptic.Curve // nil: not a crypto/elliptic curve
	}{
		{asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, "P-256", elliptic.P256()},
		{asn1.ObjectIdentifier{1, 3, 132, 0, 34}, "P-384", elliptic.P384()},
		{asn1.ObjectIdentifier{1, 3, 132, 0, 35}, "P-521", elliptic.P521()},
		{asn1.ObjectIdentifier{1, 3, 132, 0, 33}, "P-224", elliptic.P224()},
		{secp256k1.OIDNamedCurveSecp256k1, "secp256k1", nil},
	}

	otherAlgorithms = map[string]string{
		"1.3.101.110":           "an X25519 key",
		"1.3.101.111":           "an X448 key",
		"1.3.101.112":           "an Ed25519 key",
		"1.3.101.113":           "an Ed448 key",
		"1.2.840.113549.1.1.10": "an RSASSA-PSS key",
		"1.2.840.10040.4.1":     "a DSA key",
		"1.2.840.10046.2.1":     "a DH key",
	}
)

// privateKeyInfo and ecPrivateKey are the shared ASN.1 shapes (shared/pkcs8).
type (
	privateKeyInfo = pkcs8.PrivateKeyInfo
	ecPrivateKey   = pkcs8.ECPrivateKey
)

// ParseMaterial checks that material is exactly what KMS ImportKeyMaterial
// accepts for spec, once unwrapped: raw bytes of an allowed length for
// SYMMETRIC_DEFAULT and HMAC_*, a PKCS#8 DER private key of the right RSA
// modulus size or the right named curve for RSA_* and ECC_*. EC keys may
// carry the optional public key in their ECPrivateKey or not; if they do, it
// must be the public key of the private scalar.
//
// The error is a *MaterialError (matching ErrIncorrectMaterial) for bad
// material, or wraps ErrUnknownSpec for a spec that is not importable.
func ParseMaterial(spec Spec, material []byte) (*Material, error) {
	info, err := Lookup(spec)
	if err != nil {
		return nil, err
	}
	switch info.Format {
	case MaterialRaw:
		return parseRaw(info, material)
	case MaterialPKCS8:
		return parsePKCS8(info, material)
	}
	return nil, fmt.Errorf("keyspec: %s has no material format", spec)
}

func incorrect(spec Spec, cause error, format string, args ...any) *MaterialError {
	return &MaterialError{Spec: spec, Reason: fmt.Sprintf(format, args...), Err: cause}
}

func parseRaw(info Info, material []byte) (*Material, error) {
	n := len(material)
	if n < info.MinKeyBytes || n > info.MaxKeyBytes {
		if info.MinKeyBytes == info.MaxKeyBytes {
			return nil, incorrect(info.Spec, nil, "%s material is %d bytes, want %d", info.Spec, n, info.MinKeyBytes)
		}
		return nil, incorrect(info.Spec, nil, "%s material is %d bytes, want %d..%d", info.Spec, n, info.MinKeyBytes, info.MaxKeyBytes)
	}
	return &Material{Spec: info.Spec, Secret: append([]byte(nil), material...)}, nil
}

func parsePKCS8(info Info, material []byte) (*Material, error) {
	spec := info.Spec
	var pki privateKeyInfo
	rest, err := asn1.Unmarshal(material, &pki)
	if err != nil {
		return nil, incorrect(spec, err, "%s material is not PKCS#8 DER: %v", spec, err)
	}
	if len(rest) != 0 {
		return nil, incorrect(spec, nil, "%s material is not PKCS#8 DER: %d trailing bytes", spec, len(rest))
	}
	if pki.Version != 0 && pki.Version != 1 {
		return nil, incorrect(spec, nil, "%s material is not PKCS#8 DER: version %d", spec, pki.Version)
	}
	alg := pki.Algorithm.Algorithm
	switch {
	case alg.Equal(oidRSAEncryption):
		return parseRSA(info, material)
	case alg.Equal(oidECPublicKey):
		return parseEC(info, material, &pki)
	}
	what, ok := otherAlgorithms[alg.String()]
	if !ok {
		what = "a key of algorithm " + alg.String()
	}
	return nil, incorrect(spec, nil, "%s material is %s", spec, what)
}

func parseRSA(info Info, material []byte) (*Material, error) {
	spec := info.Spec
	k, err := x509.ParsePKCS8PrivateKey(material)
	if err != nil {
		return nil, incorrect(spec, err, "%s material is not a valid RSA PKCS#8 key: %v", spec, err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, incorrect(spec, nil, "%s material is a %T, want an RSA key", spec, k)
	}
	bits := key.N.BitLen()
	if info.Family != FamilyRSA {
		return nil, incorrect(spec, nil, "%s material is an RSA-%d key", spec, bits)
	}
	if bits != info.Bits {
		return nil, incorrect(spec, nil, "%s material is an RSA-%d key", spec, bits)
	}
	if err := key.Validate(); err != nil {
		return nil, incorrect(spec, err, "%s material is an invalid RSA key: %v", spec, err)
	}
	return withPublic(spec, key)
}

func parseEC(info Info, material []byte, pki *privateKeyInfo) (*Material, error) {
	spec := info.Spec
	var curveOID asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(pki.Algorithm.Parameters.FullBytes, &curveOID)
	if err != nil || len(rest) != 0 {
		return nil, incorrect(spec, err, "%s material is an EC key without a named curve", spec)
	}
	name, curve := "", elliptic.Curve(nil)
	for _, c := range curveOIDs {
		if c.oid.Equal(curveOID) {
			name, curve = c.name, c.curve
		}
	}
	if name == "" {
		return nil, incorrect(spec, nil, "%s material is an EC key on curve %v", spec, curveOID)
	}
	if info.Family != FamilyECC || name != info.Curve {
		return nil, incorrect(spec, nil, "%s material is a %s key", spec, name)
	}
	if name == "secp256k1" {
		key, err := secp256k1.ParsePKCS8PrivateKey(material)
		if err != nil {
			return nil, incorrect(spec, err, "%s material is an invalid secp256k1 key: %v", spec, err)
		}
		return withPublic(spec, key)
	}

	var ecKey ecPrivateKey
	rest, err = asn1.Unmarshal(pki.PrivateKey, &ecKey)
	if err != nil {
		return nil, incorrect(spec, err, "%s material holds no ECPrivateKey: %v", spec, err)
	}
	if len(rest) != 0 {
		return nil, incorrect(spec, nil, "%s material has %d trailing bytes after its ECPrivateKey", spec, len(rest))
	}
	if ecKey.Version != 1 {
		return nil, incorrect(spec, nil, "%s material has ECPrivateKey version %d, want 1", spec, ecKey.Version)
	}
	if len(ecKey.Parameters) != 0 && !ecKey.Parameters.Equal(curveOID) {
		return nil, incorrect(spec, nil, "%s material names curve %v inside its ECPrivateKey", spec, ecKey.Parameters)
	}
	size := (curve.Params().N.BitLen() + 7) / 8
	scalar := ecKey.PrivateKey
	for len(scalar) > size && scalar[0] == 0 { // tolerated leading zero padding, as crypto/x509 does
		scalar = scalar[1:]
	}
	if len(scalar) > size {
		return nil, incorrect(spec, nil, "%s material has a %d-byte private scalar, want %d", spec, len(ecKey.PrivateKey), size)
	}
	key, err := ecdsa.ParseRawPrivateKey(curve, new(big.Int).SetBytes(scalar).FillBytes(make([]byte, size)))
	if err != nil {
		return nil, incorrect(spec, err, "%s material has a private scalar out of range: %v", spec, err)
	}
	for _, embedded := range []asn1.BitString{ecKey.PublicKey, pki.PublicKey} {
		if embedded.BitLength == 0 && len(embedded.Bytes) == 0 {
			continue
		}
		if err := matchECPublic(curve, &key.PublicKey, embedded); err != nil {
			return nil, incorrect(spec, err, "%s material's embedded public key: %v", spec, err)
		}
	}
	return withPublic(spec, key)
}

// errPublicMismatch says an embedded EC public key is not D·G.
var errPublicMismatch = errors.New("does not match the private key")

// matchECPublic checks an embedded SEC 1 point (uncompressed or compressed)
// against the public key derived from the private scalar.
func matchECPublic(curve elliptic.Curve, derived *ecdsa.PublicKey, embedded asn1.BitString) error {
	if embedded.BitLength%8 != 0 || len(embedded.Bytes) == 0 {
		return errors.New("malformed BIT STRING")
	}
	var pub *ecdsa.PublicKey
	switch embedded.Bytes[0] {
	case 4:
		p, err := ecdsa.ParseUncompressedPublicKey(curve, embedded.Bytes)
		if err != nil {
			return err
		}
		pub = p
	case 2, 3:
		x, y := elliptic.UnmarshalCompressed(curve, embedded.Bytes)
		if x == nil {
			return errors.New("invalid compressed point")
		}
		pub = &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
	default:
		return fmt.Errorf("unsupported point encoding 0x%02x", embedded.Bytes[0])
	}
	if !pub.Equal(derived) {
		return errPublicMismatch
	}
	return nil
}

func withPublic(spec Spec, key crypto.Signer) (*Material, error) {
	der, err := MarshalPublicKey(key.Public())
	if err != nil {
		return nil, incorrect(spec, err, "%s material: cannot encode its public key: %v", spec, err)
	}
	return &Material{Spec: spec, Private: key, PublicDER: der}, nil
}

// MarshalPublicKey encodes a public key as DER SubjectPublicKeyInfo, like
// x509.MarshalPKIXPublicKey, and also for *secp256k1.PublicKey.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	switch p := pub.(type) {
	case *secp256k1.PublicKey:
		return secp256k1.MarshalPKIXPublicKey(p)
	case secp256k1.PublicKey:
		return secp256k1.MarshalPKIXPublicKey(&p)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keyspec: marshal public key: %w", err)
	}
	return der, nil
}

// Equal reports whether m and o are the same key material for the same
// spec, comparing the secret bytes, or the canonical PKCS#8 encodings of the
// private keys, in constant time. Two encodings of one RSA key pair that
// carry different (equivalent) private exponents compare unequal.
func (m *Material) Equal(o *Material) bool {
	if m == nil || o == nil || m.Spec != o.Spec {
		return false
	}
	if m.Private == nil && o.Private == nil {
		return m.Secret != nil && o.Secret != nil && subtle.ConstantTimeCompare(m.Secret, o.Secret) == 1
	}
	a, errA := canonicalPrivate(m.Private)
	b, errB := canonicalPrivate(o.Private)
	if errA != nil || errB != nil {
		return false
	}
	return subtle.ConstantTimeCompare(a, b) == 1
}

// canonicalPrivate is the PKCS#8 DER of a private key, public key included.
func canonicalPrivate(k crypto.Signer) ([]byte, error) {
	switch k := k.(type) {
	case *secp256k1.PrivateKey:
		return secp256k1.MarshalPKCS8PrivateKey(k, true)
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return x509.MarshalPKCS8PrivateKey(k)
	case nil:
		return nil, errors.New("keyspec: no private key")
	}
	return nil, fmt.Errorf("keyspec: unsupported private key type %T", k)
}
