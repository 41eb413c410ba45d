package kmsemu

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// parseMaterial validates imported (or generated) bytes for a key spec.
// TEMPORARY: shared/keyspec.ParseMaterial (a colleague's, in flight) replaces
// this body once it lands; the rules then live only there.
func parseMaterial(spec keyspec.Spec, raw []byte) (*parsedMaterial, error) {
	info, err := keyspec.Lookup(spec)
	if err != nil {
		return nil, err
	}
	switch info.Family {
	case keyspec.FamilySymmetric, keyspec.FamilyHMAC:
		if len(raw) < info.MinKeyBytes || len(raw) > info.MaxKeyBytes {
			return nil, fmt.Errorf("%s material is %d bytes, want %d..%d", spec, len(raw), info.MinKeyBytes, info.MaxKeyBytes)
		}
		return &parsedMaterial{Secret: append([]byte(nil), raw...)}, nil
	}
	var signer crypto.Signer
	var pubDER []byte
	if info.Curve == "secp256k1" {
		k, err := secp256k1.ParsePKCS8PrivateKey(raw)
		if err != nil {
			return nil, err
		}
		signer = k
		if pubDER, err = secp256k1.MarshalPKIXPublicKey(&k.PublicKey); err != nil {
			return nil, err
		}
	} else {
		k, err := x509.ParsePKCS8PrivateKey(raw)
		if err != nil {
			return nil, err
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			if info.Family != keyspec.FamilyRSA || k.N.BitLen() != info.Bits {
				return nil, fmt.Errorf("RSA-%d key is not %s", k.N.BitLen(), spec)
			}
			signer = k
		case *ecdsa.PrivateKey:
			if info.Family != keyspec.FamilyECC || k.Curve.Params().Name != info.Curve {
				return nil, fmt.Errorf("EC key on %s is not %s", k.Curve.Params().Name, spec)
			}
			signer = k
		default:
			return nil, errors.New("unsupported private key type")
		}
		if pubDER, err = x509.MarshalPKIXPublicKey(signer.Public()); err != nil {
			return nil, err
		}
	}
	return &parsedMaterial{Private: signer, PublicDER: pubDER}, nil
}
