//go:build cgo

package hsm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
)

var genMu sync.Mutex // serialises check-then-generate per process

// Generate creates the key for spec inside the token under label (which
// must follow Label's scheme) with CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE
// true and CKA_EXTRACTABLE true (only so C_WrapKey can export it). It
// refuses a label that already exists with a *KeyExistsError.
func (h *HSM) Generate(ctx context.Context, label string, spec keyspec.Spec, opts ...GenerateOption) (*Key, error) {
	if _, _, err := ParseLabel(label); err != nil {
		return nil, err
	}
	info, err := keyspec.Lookup(spec)
	if err != nil {
		return nil, err
	}
	var o genOptions
	for _, opt := range opts {
		opt(&o)
	}
	genMu.Lock()
	defer genMu.Unlock()
	holder, err := newLockHolder(h.cfg.LockOwner)
	if err != nil {
		return nil, err
	}
	err = h.withSession(ctx, func(s session) (err error) {
		// Another agent of the pool may be generating this label on the
		// same token right now (genlock.go): one at a time, token-wide.
		lk, err := s.lockGeneration(ctx, label, holder, time.Now)
		if errors.Is(err, errNoGenLock) {
			h.log.Warn("hsm generation lock unavailable: generating without it (another agent of the pool could generate this label at the same time)", "label", label, "error", err.Error())
		} else if err != nil {
			return err
		}
		defer func() {
			if lk == nil {
				return
			}
			if uerr := lk.unlock(); uerr != nil && err == nil && !sessionLoss(uerr) {
				err = uerr
			}
		}()
		objs, err := s.findObjects([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}, 1)
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			return &KeyExistsError{Label: label, Token: h.token}
		}
		for try := 0; ; try++ {
			_, err = s.generate(info, label, true, !o.nonSensitive, true)
			if err == nil {
				return nil
			}
			gerr := s.unsupportedGen(info, err)
			var unsup *UnsupportedError
			if !errors.As(gerr, &unsup) || try >= len(settleDelays) || !h.generatedBefore(spec) {
				return gerr
			}
			// The token generated this spec before (its probe did), so an
			// "unsupported" answer now is SoftHSM2's object-store race under
			// concurrent sessions (SoftHSMv2 #573: CKR_TEMPLATE_INCONSISTENT
			// or CKR_GENERAL_ERROR from C_GenerateKey), not a capability.
			h.log.Warn("hsm key generation refused for a spec the token generates: trying again", "label", label, "spec", string(spec), "error", gerr.Error())
			time.Sleep(settleDelays[try])
			// A half-made object of the failed call must not stay beside
			// the next one: the label did not exist when this call began
			// (checked above, under genMu and the token's generation lock),
			// so whatever carries it now is the failed call's.
			left, ferr := s.findObjects([]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			}, 8)
			if ferr != nil {
				return ferr
			}
			for _, o := range left {
				if derr := s.p.DestroyObject(s.h, o); derr != nil {
					return s.wrapErr("C_DestroyObject", derr)
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if o.generated != nil {
		o.generated(label)
	}
	h.log.Info("hsm key generated", "label", label, "spec", string(spec), "sensitive", !o.nonSensitive)
	return &Key{Label: label, ID: KeyID(label), Spec: spec}, nil
}

// secretTemplate is the part of every secret or private key's template
// that keyferry sets the same way: storage, sensitivity, label and id.
func secretTemplate(label string, token, sensitive, extractable bool) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, sensitive),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, extractable),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, KeyID(label)),
	}
}

// generate creates a key (token or session object) and returns the handle
// of the secret or private key.
func (s session) generate(info keyspec.Info, label string, token, sensitive, extractable bool) (pkcs11.ObjectHandle, error) {
	common := secretTemplate(label, token, sensitive, extractable)
	switch info.Family {
	case keyspec.FamilySymmetric, keyspec.FamilyHMAC:
		keyType, use := uint(pkcs11.CKK_AES), []uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT}
		if info.Family == keyspec.FamilyHMAC {
			keyType, use = pkcs11.CKK_GENERIC_SECRET, []uint{pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY}
		}
		t := append(common,
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, info.KeyBytes),
			pkcs11.NewAttribute(use[0], true),
			pkcs11.NewAttribute(use[1], true),
		)
		mech := keygenMechanism(info.Family)
		o, err := s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, t)
		return o, s.wrapMechErr("C_GenerateKey", mech, err)
	case keyspec.FamilyRSA:
		pub := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, info.Bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, KeyID(label)),
		}
		priv := append(common,
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		)
		_, o, err := s.p.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}, pub, priv)
		return o, s.wrapMechErr("C_GenerateKeyPair", pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, err)
	case keyspec.FamilyECC:
		return s.generateEC(info.Curve, label, token, sensitive, extractable, common)
	}
	return 0, fmt.Errorf("hsm: cannot generate key family %s", info.Family)
}

func (s session) generateEC(curve, label string, token, sensitive, extractable bool, common []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	params, err := ecParams(curve)
	if err != nil {
		return 0, err
	}
	if common == nil {
		common = secretTemplate(label, token, sensitive, extractable)
	}
	pub := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, token),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, KeyID(label)),
	}
	priv := append(common,
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	)
	_, o, err := s.p.GenerateKeyPair(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)}, pub, priv)
	return o, s.wrapMechErr("C_GenerateKeyPair", pkcs11.CKM_EC_KEY_PAIR_GEN, err)
}

// Find returns the existing key labelled label (to re-wrap it: re-import
// before expiry, restore after a kill switch) with its spec read from the
// token's public attributes.
func (h *HSM) Find(ctx context.Context, label string) (*Key, error) {
	var k *Key
	err := h.withSession(ctx, func(s session) error {
		o, class, err := s.findKey(label)
		if err != nil {
			return err
		}
		spec, err := s.specOf(o, class)
		if err != nil {
			return err
		}
		k = &Key{Label: label, ID: KeyID(label), Spec: spec}
		return nil
	})
	return k, err
}

// specOf derives the KMS key spec of a key from non-secret attributes.
func (s session) specOf(o pkcs11.ObjectHandle, class uint) (keyspec.Spec, error) {
	a, err := s.attrs(o, pkcs11.CKA_KEY_TYPE)
	if err != nil {
		return "", err
	}
	kt := ulong(a[pkcs11.CKA_KEY_TYPE])
	switch {
	case class == pkcs11.CKO_SECRET_KEY && (kt == pkcs11.CKK_AES || kt == pkcs11.CKK_GENERIC_SECRET):
		l, err := s.attrs(o, pkcs11.CKA_VALUE_LEN)
		if err != nil {
			return "", err
		}
		n := int(ulong(l[pkcs11.CKA_VALUE_LEN]))
		for _, sp := range keyspec.All() {
			i := keyspec.MustLookup(sp)
			if i.KeyBytes == n && ((kt == pkcs11.CKK_AES && i.Family == keyspec.FamilySymmetric) ||
				(kt == pkcs11.CKK_GENERIC_SECRET && i.Family == keyspec.FamilyHMAC)) {
				return sp, nil
			}
		}
		return "", fmt.Errorf("hsm: secret key of type 0x%X and %d bytes matches no KMS key spec", kt, n)
	case class == pkcs11.CKO_PRIVATE_KEY && kt == pkcs11.CKK_RSA:
		m, err := s.attrs(o, pkcs11.CKA_MODULUS)
		if err != nil {
			return "", err
		}
		bits := 8 * len(m[pkcs11.CKA_MODULUS])
		for _, sp := range []keyspec.Spec{keyspec.RSA2048, keyspec.RSA3072, keyspec.RSA4096} {
			if keyspec.MustLookup(sp).Bits == bits {
				return sp, nil
			}
		}
		return "", fmt.Errorf("hsm: RSA-%d key matches no KMS key spec", bits)
	case class == pkcs11.CKO_PRIVATE_KEY && kt == pkcs11.CKK_EC:
		p, err := s.attrs(o, pkcs11.CKA_EC_PARAMS)
		if err != nil {
			return "", err
		}
		for _, sp := range keyspec.All() {
			i := keyspec.MustLookup(sp)
			if i.Family != keyspec.FamilyECC {
				continue
			}
			if want, _ := ecParams(i.Curve); string(want) == string(p[pkcs11.CKA_EC_PARAMS]) {
				return sp, nil
			}
		}
		return "", fmt.Errorf("hsm: EC key on an unsupported curve")
	}
	return "", fmt.Errorf("hsm: object class %d key type 0x%X matches no KMS key spec", class, kt)
}

// unsupportedGen turns "the token cannot generate this" into an
// *UnsupportedError naming the keygen mechanism and the token.
func (s session) unsupportedGen(info keyspec.Info, err error) error {
	switch codeOf(err) {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_FUNCTION_NOT_SUPPORTED,
		pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_DOMAIN_PARAMS_INVALID, pkcs11.CKR_CURVE_NOT_SUPPORTED,
		pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID:
		return &UnsupportedError{Token: s.token, Spec: string(info.Spec), Mechanism: mechName(keygenMechanism(info.Family)),
			Reason: codeName(codeOf(err))}
	}
	return err
}

// generatedBefore reports whether the cached capability probe generated a
// key of spec on this token (false before any probe).
func (h *HSM) generatedBefore(spec keyspec.Spec) bool {
	h.capMu.Lock()
	defer h.capMu.Unlock()
	if h.probed == nil {
		return false
	}
	for _, c := range h.probed.caps {
		if c.KeySpec == spec {
			return c.Missing == ""
		}
	}
	return false
}
