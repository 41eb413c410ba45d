//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

type probeResult struct {
	caps  []Capability
	modes map[keyspec.Spec]map[keyspec.WrappingAlgorithm]wrapMode
	why   map[keyspec.Spec]map[keyspec.WrappingAlgorithm]string // mechanism that failed
}

// probeKey is a throwaway RSA-3072 wrapping key for trial wraps, made once
// per process (3072 so P-521 fits RSAES_OAEP_SHA_256).
var probeKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 3072)
})

// Capabilities probes (once per HSM, then cached) which key specs the token
// can generate and which wrapping algorithms actually work for them: it
// reads C_GetMechanismList and, for each spec, generates a throwaway session
// key and wraps it under a throwaway session RSA key with each legal
// algorithm, unwrapping the result with the pure-Go reference to make sure
// the token produced the format KMS expects.
func (h *HSM) Capabilities(ctx context.Context) ([]Capability, error) {
	r, err := h.probe(ctx)
	if err != nil {
		return nil, err
	}
	return r.caps, nil
}

// probeTries bounds the probe of one key spec interrupted by session or
// device loss (each try already re-initialises and retries once).
const probeTries = 3

func (h *HSM) probe(ctx context.Context) (*probeResult, error) {
	h.capMu.Lock()
	defer h.capMu.Unlock()
	if h.probed != nil {
		return h.probed, nil
	}
	priv, err := probeKey()
	if err != nil {
		return nil, fmt.Errorf("hsm: probe key: %w", err)
	}
	res := &probeResult{
		modes: map[keyspec.Spec]map[keyspec.WrappingAlgorithm]wrapMode{},
		why:   map[keyspec.Spec]map[keyspec.WrappingAlgorithm]string{},
	}
	var mechs map[uint]pkcs11.MechanismInfo
	err = h.withSession(ctx, func(s session) (err error) {
		mechs, err = s.mechanisms()
		return err
	})
	if err != nil {
		return nil, err
	}
	// One session (and one recovery budget) per key spec, and a few tries
	// on session or device loss: a transient HSM fault during the dozens of
	// trial wraps must not leave the agent without capabilities.
	for _, spec := range keyspec.All() {
		var c Capability
		for try := 1; ; try++ {
			err = h.withSession(ctx, func(s session) (err error) {
				c, err = s.probeSpec(spec, mechs, priv, res)
				return err
			})
			if err == nil || !sessionLoss(err) || try == probeTries {
				break
			}
			h.log.Warn("hsm probe interrupted; trying the key spec again", "key_spec", string(spec), "error", err.Error())
		}
		if err != nil {
			return nil, err
		}
		res.caps = append(res.caps, c)
	}
	h.probed = res
	h.log.Info("hsm capabilities probed", "table", FormatCapabilities(res.caps))
	return res, nil
}

func (s session) mechanisms() (map[uint]pkcs11.MechanismInfo, error) {
	list, err := s.p.GetMechanismList(s.hsm.slot)
	if err != nil {
		return nil, s.wrapErr("C_GetMechanismList", err)
	}
	out := make(map[uint]pkcs11.MechanismInfo, len(list))
	for _, m := range list {
		info, err := s.p.GetMechanismInfo(s.hsm.slot, []*pkcs11.Mechanism{m})
		if err != nil {
			continue
		}
		out[m.Mechanism] = info
	}
	return out, nil
}

func keygenMechanism(f keyspec.Family) uint {
	switch f {
	case keyspec.FamilySymmetric:
		return pkcs11.CKM_AES_KEY_GEN
	case keyspec.FamilyHMAC:
		return pkcs11.CKM_GENERIC_SECRET_KEY_GEN
	case keyspec.FamilyRSA:
		return pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
	}
	return pkcs11.CKM_EC_KEY_PAIR_GEN
}

func (s session) probeSpec(spec keyspec.Spec, mechs map[uint]pkcs11.MechanismInfo, priv *rsa.PrivateKey, res *probeResult) (Capability, error) {
	info := keyspec.MustLookup(spec)
	c := Capability{KeySpec: spec, Mechanisms: map[keyspec.WrappingAlgorithm]string{}}
	res.modes[spec] = map[keyspec.WrappingAlgorithm]wrapMode{}
	res.why[spec] = map[keyspec.WrappingAlgorithm]string{}
	gen := keygenMechanism(info.Family)
	gi, ok := mechs[gen]
	if !ok {
		c.Missing = mechName(gen)
		return c, nil
	}
	if info.Family == keyspec.FamilyRSA && gi.MaxKeySize != 0 && gi.MaxKeySize < uint(info.Bits) {
		c.Missing = fmt.Sprintf("%s (max %d bits)", mechName(gen), gi.MaxKeySize)
		return c, nil
	}
	oi, ok := mechs[pkcs11.CKM_RSA_PKCS_OAEP]
	if !ok {
		c.Missing = mechName(pkcs11.CKM_RSA_PKCS_OAEP)
		return c, nil
	}
	// A throwaway session key of the spec (RSA: the smallest size stands in
	// for the family; the keygen size range was checked above).
	probeInfo := info
	if info.Family == keyspec.FamilyRSA {
		probeInfo = keyspec.MustLookup(keyspec.RSA2048)
	}
	target, err := s.generate(probeInfo, probeLabel, false, true, true)
	if err != nil {
		if sessionLoss(err) {
			return c, err
		}
		c.Missing = fmt.Sprintf("%s: %s", mechName(gen), codeName(codeOf(err)))
		return c, nil
	}
	defer func() { s.destroyProbe(target) }()
	known, err := s.probeTruth(target, info)
	if err != nil {
		return c, err
	}
	native := !s.hsm.cfg.NoRSAAESKeyWrap
	if _, ok := mechs[pkcs11.CKM_RSA_AES_KEY_WRAP]; !ok {
		native = false
	}
	listed := func(m uint) bool { _, ok := mechs[m]; return ok }
	for _, alg := range keyspec.WrappingAlgorithms() {
		if len(legalKeySpecs(spec, alg, oi)) == 0 {
			continue
		}
		modes := []wrapMode{modeOAEP}
		if alg.Hybrid() {
			modes = s.hsm.cfg.twoStepModes(listed)
			if native {
				modes = append([]wrapMode{modeRSAAESKW}, modes...)
			}
		}
		var fails []string
		for _, m := range modes {
			blob, err := s.wrap(target, &priv.PublicKey, alg, m)
			// An RSA PKCS#8 whose length is already a multiple of 8 cannot
			// tell RFC 5649 from "zero-pad, then wrap" (SoftHSM): retry with
			// fresh throwaway keys until the length is not aligned.
			for try := 0; err == nil && alg.Hybrid() && info.Family == keyspec.FamilyRSA && try < 8 && alignedPKCS8(priv, alg, blob); try++ {
				s.destroyProbe(target)
				if target, err = s.generate(probeInfo, probeLabel, false, true, true); err != nil {
					return c, err
				}
				if known, err = s.probeTruth(target, info); err != nil {
					return c, err
				}
				blob, err = s.wrap(target, &priv.PublicKey, alg, m)
			}
			if err == nil {
				if cerr := checkProbeBlob(priv, alg, info, blob, known); cerr != nil {
					mech := mechName(pkcs11.CKM_RSA_PKCS_OAEP)
					switch m {
					case modeRSAAESKW:
						mech = mechName(pkcs11.CKM_RSA_AES_KEY_WRAP)
					case modeTwoStep, modeTwoStepKWP:
						mech = mechName(m.kwpMechanism())
					}
					err = fmt.Errorf("%s: %w", mech, cerr)
				}
			}
			if err == nil {
				res.modes[spec][alg] = m
				c.Algorithms = append(c.Algorithms, alg)
				c.Mechanisms[alg] = m.String()
				break
			}
			if sessionLoss(err) {
				return c, err
			}
			fails = append(fails, probeFailure(err))
		}
		if _, ok := res.modes[spec][alg]; !ok {
			c.Mechanisms[alg] = strings.Join(fails, "; ")
			res.why[spec][alg] = strings.Join(fails, "; ")
		}
	}
	for _, w := range keyspec.WrappingKeySpecs() {
		for _, alg := range c.Algorithms {
			if slices.Contains(legalKeySpecs(spec, alg, oi), w) {
				c.WrappingKeySpecs = append(c.WrappingKeySpecs, w)
				break
			}
		}
	}
	return c, nil
}

// probeLabel labels the probe's throwaway session keys.
const probeLabel = "kf-probe"

// destroyProbe destroys a throwaway probe key and, for key pairs, its
// public half: generate returns only the private handle, and a session
// object lives as long as its (pooled, long-lived) session otherwise.
func (s session) destroyProbe(o pkcs11.ObjectHandle) {
	_ = s.p.DestroyObject(s.h, o)
	pubs, err := s.findObjects([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, probeLabel),
	}, 16)
	if err != nil {
		return
	}
	for _, p := range pubs {
		_ = s.p.DestroyObject(s.h, p)
	}
}

func probeFailure(err error) string {
	if e, ok := err.(*Error); ok {
		return fmt.Sprintf("%s: %s", e.Mechanism, codeName(e.Code))
	}
	return err.Error()
}

// legalKeySpecs lists the wrapping key specs that KMS allows for (spec, alg)
// and that fall in the token's CKM_RSA_PKCS_OAEP key size range.
func legalKeySpecs(spec keyspec.Spec, alg keyspec.WrappingAlgorithm, oaep pkcs11.MechanismInfo) []keyspec.WrappingKeySpec {
	var out []keyspec.WrappingKeySpec
	for _, w := range keyspec.WrappingKeySpecs() {
		if keyspec.CheckWrapping(spec, alg, w) != nil {
			continue
		}
		if oaep.MaxKeySize != 0 && (uint(w.Bits()) > oaep.MaxKeySize || uint(w.Bits()) < oaep.MinKeySize) {
			continue
		}
		out = append(out, w)
	}
	return out
}

// probeKnown is what the probe learns of its throwaway key from the token
// without exporting it: for a secret, the token's answer to a known input
// (AES: one block under CKM_AES_ECB; HMAC: the MAC of probeInput), for a
// key pair, its public key (DER SPKI). Each is nil when the token cannot
// say; the shape check alone applies then.
type probeKnown struct {
	mech   uint   // CKM_AES_ECB or CKM_SHA*_HMAC
	answer []byte // the token's output for probeInput
	spki   []byte
}

// probeInput is what the probe asks the token to encrypt or MAC.
var probeInput = []byte("keyferry probe\x00\x00") // one AES block

// probeTruth asks the token about the probe key target.
func (s session) probeTruth(target pkcs11.ObjectHandle, info keyspec.Info) (probeKnown, error) {
	var k probeKnown
	switch info.Family {
	case keyspec.FamilySymmetric, keyspec.FamilyHMAC:
		mech := uint(pkcs11.CKM_AES_ECB)
		if info.Family == keyspec.FamilyHMAC {
			mech = hmacMechanism(info.Spec)
		}
		m := []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}
		var out []byte
		var err error
		if info.Family == keyspec.FamilyHMAC {
			if err = s.p.SignInit(s.h, m, target); err == nil {
				out, err = s.p.Sign(s.h, probeInput)
			}
		} else if err = s.p.EncryptInit(s.h, m, target); err == nil {
			out, err = s.p.Encrypt(s.h, probeInput)
		}
		if err != nil {
			if werr := s.wrapMechErr("probe "+mechName(mech), mech, err); sessionLoss(werr) {
				return k, werr
			}
			return k, nil
		}
		k.mech, k.answer = mech, out
	default:
		pubs, err := s.findObjects([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, probeLabel),
		}, 2)
		if err != nil {
			return k, err
		}
		if len(pubs) != 1 {
			return k, nil
		}
		der, err := s.publicKeyDEROf(pubs[0], probeLabel)
		if err != nil {
			if sessionLoss(err) {
				return k, err
			}
			return k, nil
		}
		k.spki = der
	}
	return k, nil
}

// sameAnswer checks that the unwrapped secret m gives the token's answer.
func (k probeKnown) sameAnswer(m []byte) error {
	if k.answer == nil {
		return nil
	}
	var got []byte
	switch k.mech {
	case pkcs11.CKM_AES_ECB:
		b, err := aes.NewCipher(m)
		if err != nil {
			return fmt.Errorf("trial blob unwraps to no AES key: %w", err)
		}
		got = make([]byte, aes.BlockSize)
		b.Encrypt(got, probeInput)
	default:
		var h func() hash.Hash
		switch k.mech {
		case pkcs11.CKM_SHA224_HMAC:
			h = sha256.New224
		case pkcs11.CKM_SHA256_HMAC:
			h = sha256.New
		case pkcs11.CKM_SHA384_HMAC:
			h = sha512.New384
		default:
			h = sha512.New
		}
		mac := hmac.New(h, m)
		mac.Write(probeInput)
		got = mac.Sum(nil)
	}
	if !hmac.Equal(got, k.answer) {
		return fmt.Errorf("trial blob unwraps to a different key than the one wrapped (%s answers differ)", mechName(k.mech))
	}
	return nil
}

// checkProbeBlob unwraps a trial blob with the throwaway private key and
// checks it has the shape KMS expects (secret length; PKCS#8 for key pairs)
// and, where the probe knows the key (known), that it is that key: a token
// that claims a mechanism and wraps the wrong bytes is never used.
func checkProbeBlob(priv *rsa.PrivateKey, alg keyspec.WrappingAlgorithm, info keyspec.Info, blob []byte, known probeKnown) error {
	m, err := wrapping.Unwrap(priv, alg, blob)
	if err != nil {
		return fmt.Errorf("trial blob does not unwrap with the reference: %w", err)
	}
	defer clear(m)
	if info.Format == keyspec.MaterialRaw && len(m) != info.KeyBytes {
		return fmt.Errorf("trial blob unwraps to %d bytes, want %d", len(m), info.KeyBytes)
	}
	if info.Format == keyspec.MaterialRaw {
		if err := known.sameAnswer(m); err != nil {
			return err
		}
	}
	if info.Format == keyspec.MaterialPKCS8 {
		var seq asn1.RawValue
		rest, err := asn1.Unmarshal(m, &seq)
		if err != nil || seq.Tag != asn1.TagSequence {
			return fmt.Errorf("trial blob does not unwrap to a DER PKCS#8 structure")
		}
		if len(rest) != 0 {
			// SoftHSM 2.6.1: WrapKeySym zero-pads the input of every
			// symmetric C_WrapKey (secret keys too) to a multiple of 8 bytes
			// before RFC 5649, so the MLI covers the zeros and KMS would
			// receive PKCS#8 with trailing bytes. The token has no
			// mechanism to make an exact-length copy inside it either
			// (softhsm_kwp_test.go pins both), so such specs stay
			// unsupported rather than exporting anything in the clear.
			return fmt.Errorf("%s output unwraps to PKCS#8 followed by %d padding bytes (token pads before RFC 5649; not what KMS expects)",
				"AES key wrap with padding", len(rest))
		}
		if known.spki != nil {
			if err := samePublicKey(m, known.spki); err != nil {
				return err
			}
		}
	}
	return nil
}

// samePublicKey checks that the PKCS#8 private key der belongs to the
// public key spki. Curves the standard library does not parse
// (secp256k1) are left to the shape check.
func samePublicKey(der, spki []byte) error {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		// crypto/x509 says "unknown elliptic curve" for secp256k1 in
		// PKCS#8 (and "unsupported elliptic curve" elsewhere).
		if strings.Contains(err.Error(), "unsupported elliptic curve") || strings.Contains(err.Error(), "unknown elliptic curve") {
			return nil
		}
		return fmt.Errorf("trial blob unwraps to PKCS#8 the reference cannot parse: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return fmt.Errorf("trial blob unwraps to a %T, not a key pair", k)
	}
	got, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return fmt.Errorf("trial blob's public key: %w", err)
	}
	if !bytes.Equal(got, spki) {
		return fmt.Errorf("trial blob unwraps to a different key pair than the one wrapped (public keys differ)")
	}
	return nil
}

// wrapMode returns how to wrap spec with alg, or an *UnsupportedError.
func (h *HSM) wrapMode(ctx context.Context, spec keyspec.Spec, alg keyspec.WrappingAlgorithm, wks keyspec.WrappingKeySpec) (wrapMode, error) {
	r, err := h.probe(ctx)
	if err != nil {
		return 0, err
	}
	if m, ok := r.modes[spec][alg]; ok {
		for _, c := range r.caps {
			if c.KeySpec == spec && !slices.Contains(c.WrappingKeySpecs, wks) {
				return 0, &UnsupportedError{Token: h.token, Spec: string(spec), Algorithm: string(alg),
					Mechanism: mechName(pkcs11.CKM_RSA_PKCS_OAEP), Reason: fmt.Sprintf("wrapping key size %s is outside the token's range", wks)}
			}
		}
		return m, nil
	}
	mech := mechName(pkcs11.CKM_RSA_PKCS_OAEP)
	if alg.Hybrid() {
		mech = mechName(pkcs11.CKM_RSA_AES_KEY_WRAP) + " / AES key wrap with padding"
	}
	reason := r.why[spec][alg]
	for _, c := range r.caps {
		if c.KeySpec == spec && c.Missing != "" {
			mech, reason = c.Missing, "cannot generate the key"
		}
	}
	return 0, &UnsupportedError{Token: h.token, Spec: string(spec), Algorithm: string(alg), Mechanism: mech, Reason: reason}
}

// alignedPKCS8 reports whether the blob unwraps to a DER structure whose
// length is a multiple of 8 with nothing after it.
func alignedPKCS8(priv *rsa.PrivateKey, alg keyspec.WrappingAlgorithm, blob []byte) bool {
	m, err := wrapping.Unwrap(priv, alg, blob)
	if err != nil {
		return false
	}
	defer clear(m)
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(m, &seq)
	return err == nil && len(rest) == 0 && len(m)%8 == 0
}
