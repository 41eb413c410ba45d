//go:build cgo

package hsm

import (
	"context"
	"crypto/rsa"
	"errors"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// Wrap exports the key labelled label wrapped for KMS ImportKeyMaterial
// under the KMS wrapping public key wrappingKeyDER (DER SPKI, as
// GetParametersForImport returns it) with algorithm alg. The combination is
// checked with keyspec.CheckWrapping first (*keyspec.IllegalCombinationError)
// and against the token's probed capabilities (*UnsupportedError). The
// wrapping public key lives in the token only as a session object for the
// duration of the call.
func (h *HSM) Wrap(ctx context.Context, label string, wrappingKeyDER []byte, alg keyspec.WrappingAlgorithm) ([]byte, error) {
	pub, wks, err := wrapping.ParsePublicKey(wrappingKeyDER)
	if err != nil {
		return nil, err
	}
	k, err := h.findSettled(ctx, label)
	if err != nil {
		return nil, err
	}
	if err := keyspec.CheckWrapping(k.Spec, alg, wks); err != nil {
		return nil, err
	}
	mode, err := h.wrapMode(ctx, k.Spec, alg, wks)
	if err != nil {
		return nil, err
	}
	var blob []byte
	err = h.settle(ctx, func() error {
		return h.withSession(ctx, func(s session) error {
			o, _, err := s.findKey(label)
			if err != nil {
				return err
			}
			blob, err = s.wrap(o, pub, alg, mode)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	h.log.Info("hsm key wrapped", "label", label, "spec", string(k.Spec), "algorithm", string(alg),
		"wrapping_key_spec", string(wks), "mode", mode.String(), "blob_bytes", len(blob))
	return blob, nil
}

// wrapMode says how a hybrid algorithm runs on this token.
type wrapMode int

const (
	modeOAEP       wrapMode = iota + 1 // CKM_RSA_PKCS_OAEP directly on the target
	modeRSAAESKW                       // CKM_RSA_AES_KEY_WRAP in one call
	modeTwoStep                        // OAEP(ephemeral AES) || CKM_AES_KEY_WRAP_PAD(target)
	modeTwoStepKWP                     // OAEP(ephemeral AES) || CKM_AES_KEY_WRAP_KWP(target)
)

// kwpMechanism is the AES key wrap mechanism of a two-step mode.
func (m wrapMode) kwpMechanism() uint {
	if m == modeTwoStepKWP {
		return CKM_AES_KEY_WRAP_KWP
	}
	return pkcs11.CKM_AES_KEY_WRAP_PAD
}

func (m wrapMode) String() string {
	switch m {
	case modeOAEP:
		return "CKM_RSA_PKCS_OAEP"
	case modeRSAAESKW:
		return "CKM_RSA_AES_KEY_WRAP"
	case modeTwoStep:
		return "two-step/CKM_AES_KEY_WRAP_PAD"
	case modeTwoStepKWP:
		return "two-step/CKM_AES_KEY_WRAP_KWP"
	}
	return "none"
}

// twoStepModes lists the two-step wrap modes the probe tries, in order,
// given the token's mechanism list.
func (c Config) twoStepModes(listed func(uint) bool) []wrapMode {
	switch c.KWPMechanism {
	case CKM_AES_KEY_WRAP_KWP:
		return []wrapMode{modeTwoStepKWP}
	case pkcs11.CKM_AES_KEY_WRAP_PAD:
		return []wrapMode{modeTwoStep}
	}
	if listed(CKM_AES_KEY_WRAP_KWP) {
		return []wrapMode{modeTwoStepKWP, modeTwoStep}
	}
	return []wrapMode{modeTwoStep}
}

// config.go (cgo-free) spells CKM_AES_KEY_WRAP_PAD by value: this fails
// to compile unless it is miekg's constant (a non-zero index is out of
// range, a negative one overflows uint).
var _ = [1]struct{}{}[ckmAESKeyWrapPad-pkcs11.CKM_AES_KEY_WRAP_PAD]

func (s session) oaepParams(alg keyspec.WrappingAlgorithm) *pkcs11.OAEPParams {
	hash, mgf := uint(pkcs11.CKM_SHA_1), uint(pkcs11.CKG_MGF1_SHA1)
	if alg.SHA256() {
		hash, mgf = pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256
	}
	source := uint(pkcs11.CKZ_DATA_SPECIFIED)
	if s.hsm.cfg.OAEPSourceNone {
		source = 0
	}
	return pkcs11.NewOAEPParams(hash, mgf, source, nil)
}

// importWrappingKey creates the KMS wrapping public key as a session object.
func (s session) importWrappingKey(pub *rsa.PublicKey) (pkcs11.ObjectHandle, error) {
	o, err := s.p.CreateObject(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "kf-kms-wrapping-key"),
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, pub.N.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(pub.E)).Bytes()),
	})
	return o, s.wrapErr("C_CreateObject(wrapping public key)", err)
}

// wrap runs one wrap of target under pub. Session objects it creates are
// destroyed before it returns.
func (s session) wrap(target pkcs11.ObjectHandle, pub *rsa.PublicKey, alg keyspec.WrappingAlgorithm, mode wrapMode) (out []byte, err error) {
	wk, err := s.importWrappingKey(pub)
	if err != nil {
		return nil, err
	}
	defer func() {
		if derr := s.p.DestroyObject(s.h, wk); derr != nil && err == nil {
			err = s.wrapErr("C_DestroyObject(wrapping public key)", derr)
		}
	}()
	oaep := pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, s.oaepParams(alg))
	switch mode {
	case modeOAEP:
		out, err = s.p.WrapKey(s.h, []*pkcs11.Mechanism{oaep}, wk, target)
		return out, s.wrapMechErr("C_WrapKey", pkcs11.CKM_RSA_PKCS_OAEP, err)
	case modeRSAAESKW:
		m := pkcs11.NewMechanism(pkcs11.CKM_RSA_AES_KEY_WRAP, &pkcs11.RSAAESKeyWrapParams{
			AESKeyBits: 8 * wrapping.EphemeralAESKeyBytes, OAEPParams: *s.oaepParams(alg),
		})
		out, err = s.p.WrapKey(s.h, []*pkcs11.Mechanism{m}, wk, target)
		return out, s.wrapMechErr("C_WrapKey", pkcs11.CKM_RSA_AES_KEY_WRAP, err)
	case modeTwoStep, modeTwoStepKWP:
		return s.wrapTwoStep(wk, target, oaep, mode.kwpMechanism())
	}
	return nil, errors.New("hsm: no wrap mode")
}

// wrapTwoStep is RSA_AES_KEY_WRAP_* without CKM_RSA_AES_KEY_WRAP: an
// ephemeral AES-256 session key generated in the token, OAEP-wrapped under
// the KMS key, then the target wrapped under it with RFC 5649; the
// ephemeral key is destroyed before returning.
func (s session) wrapTwoStep(wk, target pkcs11.ObjectHandle, oaep *pkcs11.Mechanism, kwp uint) (out []byte, err error) {
	eph, err := s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, wrapping.EphemeralAESKeyBytes),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "kf-ephemeral"),
	})
	if err != nil {
		return nil, s.wrapMechErr("C_GenerateKey(ephemeral)", pkcs11.CKM_AES_KEY_GEN, err)
	}
	defer func() {
		if derr := s.p.DestroyObject(s.h, eph); derr != nil && err == nil {
			err = s.wrapErr("C_DestroyObject(ephemeral)", derr)
		}
	}()
	head, err := s.p.WrapKey(s.h, []*pkcs11.Mechanism{oaep}, wk, eph)
	if err != nil {
		return nil, s.wrapMechErr("C_WrapKey", pkcs11.CKM_RSA_PKCS_OAEP, err)
	}
	tail, err := s.wrapKeyNoParams(kwp, eph, target)
	if err != nil {
		return nil, s.wrapMechErr("C_WrapKey", kwp, err)
	}
	return append(head, tail...), nil
}

// grownWrapper is a module that can run C_WrapKey into a buffer larger
// than its size query answered (see wrapKeyGrown). Test wrappers implement
// it to stand in front of the real call.
type grownWrapper interface {
	WrapKeyGrown(sh pkcs11.SessionHandle, mech uint, wrappingKey, key pkcs11.ObjectHandle, slack int) ([]byte, error)
}

// wrapKeyNoParams is C_WrapKey of a mechanism without parameters (the AES
// key wraps). A token whose size query answers short (NSS softoken under
// CKM_AES_KEY_WRAP_KWP reports the plaintext length, so the call that
// follows fails with CKR_BUFFER_TOO_SMALL) is asked again with a buffer of
// the answer plus kwpSlack bytes. The probe's trial wraps check what comes
// out, as for every token.
func (s session) wrapKeyNoParams(mech uint, wrappingKey, key pkcs11.ObjectHandle) ([]byte, error) {
	out, err := s.p.WrapKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, wrappingKey, key)
	if codeOf(err) != pkcs11.CKR_BUFFER_TOO_SMALL {
		return out, err
	}
	for m := s.p; m != nil; {
		if g, ok := m.(grownWrapper); ok {
			return g.WrapKeyGrown(s.h, mech, wrappingKey, key, kwpSlack)
		}
		u, ok := m.(interface{ unwrap() module })
		if !ok {
			break
		}
		m = u.unwrap()
	}
	return wrapKeyGrown(s.hsm.cfg.Module, s.h, mech, wrappingKey, key, kwpSlack)
}
