// Package pkcs8 holds the ASN.1 shapes of private-key material that KMS
// imports: PKCS#8 PrivateKeyInfo (RFC 5208, also read as RFC 5958
// OneAsymmetricKey) and SEC 1 / RFC 5915 ECPrivateKey. The material
// validator (shared/keyspec) and the secp256k1 encoder both use them.
package pkcs8

import (
	"crypto/x509/pkix"
	"encoding/asn1"
)

// PrivateKeyInfo is PKCS#8 PrivateKeyInfo, read loosely enough to also
// accept RFC 5958 OneAsymmetricKey (version 1, [1] publicKey).
type PrivateKeyInfo struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue  `asn1:"optional,tag:0"`
	PublicKey  asn1.BitString `asn1:"optional,tag:1"`
}

// ECPrivateKey is RFC 5915 ECPrivateKey. SoftHSM's C_WrapKey of an EC key
// omits the optional parameters and publicKey; openssl keeps them.
type ECPrivateKey struct {
	Version    int
	PrivateKey []byte
	Parameters asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
}

// ECPrivateKeyVersion is ecPrivkeyVer1.
const ECPrivateKeyVersion = 1
