//go:build cgo

package hsm

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// SigningScheme selects the PKCS#11 signature mechanism of Sign.
type SigningScheme int

// Signing schemes for post-import verification.
const (
	// ECDSADigest: CKM_ECDSA over a caller-computed digest; the raw r||s is
	// returned as ASN.1 DER (what KMS Sign returns).
	ECDSADigest SigningScheme = iota + 1
	// RSAPKCS1SHA256: CKM_SHA256_RSA_PKCS over the message (hashed in the token).
	RSAPKCS1SHA256
	// RSAPSSSHA256Digest: CKM_RSA_PKCS_PSS over a SHA-256 digest, MGF1-SHA256,
	// salt length 32 (KMS RSASSA_PSS_SHA_256).
	RSAPSSSHA256Digest
)

// HMAC computes the MAC of data in the token with the HMAC key labelled
// label, with the mechanism that matches its spec (CKM_SHA224/256/384/512_HMAC).
func (h *HSM) HMAC(ctx context.Context, label string, data []byte) ([]byte, error) {
	var out []byte
	err := h.withSession(ctx, func(s session) error {
		o, class, err := s.findKey(label)
		if err != nil {
			return err
		}
		spec, err := s.specOf(o, class)
		if err != nil {
			return err
		}
		mech := hmacMechanism(spec)
		if mech == 0 {
			return fmt.Errorf("hsm: key %q is %s, not an HMAC key", label, spec)
		}
		if err := s.p.SignInit(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, o); err != nil {
			return s.unsupportedOr("C_SignInit", mech, spec, err)
		}
		out, err = s.p.Sign(s.h, data)
		return s.wrapMechErr("C_Sign", mech, err)
	})
	return out, err
}

// hmacMechanism is the PKCS#11 HMAC mechanism of an HMAC key spec (0 for
// other specs).
func hmacMechanism(spec keyspec.Spec) uint {
	switch spec {
	case keyspec.HMAC224:
		return pkcs11.CKM_SHA224_HMAC
	case keyspec.HMAC256:
		return pkcs11.CKM_SHA256_HMAC
	case keyspec.HMAC384:
		return pkcs11.CKM_SHA384_HMAC
	case keyspec.HMAC512:
		return pkcs11.CKM_SHA512_HMAC
	}
	return 0
}

// unsupportedOr turns "mechanism invalid" into an *UnsupportedError naming
// the mechanism and the token, and anything else into an *Error.
func (s session) unsupportedOr(op string, mech uint, spec keyspec.Spec, err error) error {
	switch codeOf(err) {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_FUNCTION_NOT_SUPPORTED:
		return &UnsupportedError{Token: s.token, Spec: string(spec), Mechanism: mechName(mech), Reason: op + ": " + codeName(codeOf(err))}
	}
	return s.wrapMechErr(op, mech, err)
}

// Sign signs input with the private key labelled label.
func (h *HSM) Sign(ctx context.Context, label string, scheme SigningScheme, input []byte) ([]byte, error) {
	var out []byte
	err := h.withSession(ctx, func(s session) error {
		o, ok, err := s.findByLabel(label, pkcs11.CKO_PRIVATE_KEY)
		if err != nil {
			return err
		}
		if !ok {
			return &KeyNotFoundError{Label: label, Token: h.token}
		}
		out, err = s.sign(o, scheme, input)
		return err
	})
	return out, err
}

func (s session) sign(o pkcs11.ObjectHandle, scheme SigningScheme, input []byte) ([]byte, error) {
	var m *pkcs11.Mechanism
	switch scheme {
	case ECDSADigest:
		m = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	case RSAPKCS1SHA256:
		m = pkcs11.NewMechanism(pkcs11.CKM_SHA256_RSA_PKCS, nil)
	case RSAPSSSHA256Digest:
		if len(input) != 32 {
			return nil, fmt.Errorf("hsm: PSS digest is %d bytes, want 32", len(input))
		}
		m = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32))
	default:
		return nil, fmt.Errorf("hsm: unknown signing scheme %d", scheme)
	}
	if err := s.p.SignInit(s.h, []*pkcs11.Mechanism{m}, o); err != nil {
		return nil, s.unsupportedOr("C_SignInit", m.Mechanism, "", err)
	}
	sig, err := s.p.Sign(s.h, input)
	if err != nil {
		return nil, s.wrapMechErr("C_Sign", m.Mechanism, err)
	}
	if scheme == ECDSADigest {
		return rawToDER(sig)
	}
	return sig, nil
}

// PublicKeyDER returns the public key of the asymmetric key labelled label
// as DER SubjectPublicKeyInfo (RSA from CKA_MODULUS/CKA_PUBLIC_EXPONENT, EC
// from CKA_EC_PARAMS and CKA_EC_POINT), to compare with KMS GetPublicKey.
func (h *HSM) PublicKeyDER(ctx context.Context, label string) ([]byte, error) {
	var der []byte
	err := h.withSession(ctx, func(s session) error {
		var err error
		der, err = s.publicKeyDER(label)
		return err
	})
	return der, err
}

func (s session) publicKeyDER(label string) ([]byte, error) {
	o, ok, err := s.findByLabel(label, pkcs11.CKO_PUBLIC_KEY)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &KeyNotFoundError{Label: label + " (public key)", Token: s.token}
	}
	return s.publicKeyDEROf(o, label)
}

// publicKeyDEROf is publicKeyDER of the public key object o.
func (s session) publicKeyDEROf(o pkcs11.ObjectHandle, label string) ([]byte, error) {
	a, err := s.attrs(o, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return nil, err
	}
	switch ulong(a[pkcs11.CKA_KEY_TYPE]) {
	case pkcs11.CKK_RSA:
		a, err := s.attrs(o, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return nil, err
		}
		e := new(big.Int).SetBytes(a[pkcs11.CKA_PUBLIC_EXPONENT])
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, errors.New("hsm: RSA public exponent too large")
		}
		return x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(a[pkcs11.CKA_MODULUS]), E: int(e.Int64())})
	case pkcs11.CKK_EC:
		a, err := s.attrs(o, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
		if err != nil {
			return nil, err
		}
		point, err := ecPointFromAttr(a[pkcs11.CKA_EC_POINT])
		if err != nil {
			return nil, err
		}
		return ecSPKI(a[pkcs11.CKA_EC_PARAMS], point)
	}
	return nil, fmt.Errorf("hsm: key %q is not an RSA or EC key", label)
}
