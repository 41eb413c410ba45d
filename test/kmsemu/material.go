package kmsemu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// parsedMaterial is key material usable for cryptography: the secret for
// symmetric and HMAC keys, the private key and SPKI DER public key for
// asymmetric keys.
type parsedMaterial struct {
	Secret    []byte
	Private   crypto.Signer
	PublicDER []byte
}

// generateMaterial makes AWS_KMS-origin key material in the same format an
// import would carry, so both origins go through parseMaterial.
func generateMaterial(info keyspec.Info) ([]byte, *parsedMaterial, error) {
	var raw []byte
	var err error
	switch info.Family {
	case keyspec.FamilySymmetric, keyspec.FamilyHMAC:
		raw = make([]byte, info.KeyBytes)
		_, err = rand.Read(raw)
	case keyspec.FamilyRSA:
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, info.Bits); err == nil {
			raw, err = x509.MarshalPKCS8PrivateKey(k)
		}
	case keyspec.FamilyECC:
		var c elliptic.Curve
		switch info.Curve {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		case "secp256k1":
			var k *secp256k1.PrivateKey
			if k, err = secp256k1.GenerateKey(rand.Reader); err == nil {
				raw, err = secp256k1.MarshalPKCS8PrivateKey(k, true)
			}
		default:
			err = fmt.Errorf("unknown curve %q", info.Curve)
		}
		if c != nil {
			var k *ecdsa.PrivateKey
			if k, err = ecdsa.GenerateKey(c, rand.Reader); err == nil {
				raw, err = x509.MarshalPKCS8PrivateKey(k)
			}
		}
	default:
		err = fmt.Errorf("unknown key family %v", info.Family)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("generate %s material: %w", info.Spec, err)
	}
	m, err := parseMaterial(info.Spec, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("parse generated %s material: %w", info.Spec, err)
	}
	return raw, m, nil
}

// materialID derives the key material id from the key id and the material,
// as AWS documents ("based on the KMS key ID and the imported key
// material"): re-importing the same bytes gives the same id.
func materialID(keyID string, raw []byte) string {
	h := sha256.New()
	h.Write([]byte("kmsemu key material id\x00"))
	h.Write([]byte(keyID))
	h.Write([]byte{0})
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil))
}
