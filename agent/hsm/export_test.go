//go:build cgo

package hsm

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// Test-only hooks (compiled into this package's tests only).

// NonSensitiveForTest generates the key with CKA_SENSITIVE false so a test
// can read CKA_VALUE and compare bytes. Production code cannot reach it.
func NonSensitiveForTest() GenerateOption {
	return func(o *genOptions) {
		o.nonSensitive = true
		o.generated = func(label string) { nonSensitiveLabels.Store(label, true) }
	}
}

// nonSensitiveLabels holds the labels generated with NonSensitiveForTest.
var nonSensitiveLabels sync.Map

// RawCtxForTest returns the underlying module, e.g. to call Finalize under
// a live pool (simulated device loss).
func (h *HSM) RawCtxForTest() module {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.p
}

// ReadValueForTest asks the token for CKA_VALUE of the key labelled label.
// Tests use it to prove that sensitive keys refuse it and to compare
// non-sensitive test keys byte for byte.
func (h *HSM) ReadValueForTest(ctx context.Context, label string) ([]byte, error) {
	var v []byte
	err := h.withSession(ctx, func(s session) error {
		o, _, err := s.findKey(label)
		if err != nil {
			return err
		}
		a, err := s.p.GetAttributeValue(s.h, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if codeOf(err) == pkcs11.CKR_ATTRIBUTE_SENSITIVE {
			// NSS softoken keeps the value of the secrets in its database
			// token out of CKA_VALUE even when generated with CKA_SENSITIVE
			// false (and then answers CKA_SENSITIVE true or false): read a
			// key generated with NonSensitiveForTest by OAEP-wrapping it
			// under a key whose private half only this test holds.
			if _, ok := nonSensitiveLabels.Load(label); ok {
				v, err = s.readByWrapForTest(o)
				return err
			}
		}
		if err != nil {
			return s.wrapErr("C_GetAttributeValue(CKA_VALUE)", err)
		}
		v = a[0].Value
		return nil
	})
	return v, err
}

var readKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func (s session) readByWrapForTest(o pkcs11.ObjectHandle) ([]byte, error) {
	k, err := readKey()
	if err != nil {
		return nil, err
	}
	blob, err := s.wrap(o, &k.PublicKey, keyspec.RSAESOAEPSHA256, modeOAEP)
	if err != nil {
		return nil, err
	}
	return wrapping.Unwrap(k, keyspec.RSAESOAEPSHA256, blob)
}

// EncryptECBForTest encrypts one block with the AES key labelled label in
// the token (CKM_AES_ECB), to compare a sensitive key with unwrapped bytes.
func (h *HSM) EncryptECBForTest(ctx context.Context, label string, block []byte) ([]byte, error) {
	var out []byte
	err := h.withSession(ctx, func(s session) error {
		o, _, err := s.findKey(label)
		if err != nil {
			return err
		}
		m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
		if err := ctxOf(s.p).EncryptInit(s.h, m, o); err != nil {
			return s.wrapMechErr("C_EncryptInit", pkcs11.CKM_AES_ECB, err)
		}
		out, err = ctxOf(s.p).Encrypt(s.h, block)
		return s.wrapMechErr("C_Encrypt", pkcs11.CKM_AES_ECB, err)
	})
	return out, err
}

// HoldSessionsForTest takes n sessions from the pool and returns a func
// that gives them back.
func (h *HSM) HoldSessionsForTest(ctx context.Context, n int) (release func(), err error) {
	done := make(chan struct{})
	held := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_ = h.withSession(ctx, func(session) error {
				held <- nil
				<-done
				return nil
			})
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-held; err != nil {
			close(done)
			return nil, err
		}
	}
	return func() { close(done) }, nil
}

// WithSessionForTest runs an empty operation through the pool.
func (h *HSM) WithSessionForTest(ctx context.Context) error {
	return h.withSession(ctx, func(session) error { return nil })
}

// IdleSessionsForTest reports how many sessions sit in the idle pool.
func (h *HSM) IdleSessionsForTest() int { return len(h.idle) }

// WrapTwoStepForTest runs the two-step RSA_AES_KEY_WRAP construction without
// consulting the capability probe, to study a token's AES key wrap output.
func (h *HSM) WrapTwoStepForTest(ctx context.Context, label string, pub *rsa.PublicKey, alg keyspec.WrappingAlgorithm) ([]byte, error) {
	var blob []byte
	err := h.withSession(ctx, func(s session) error {
		o, _, err := s.findKey(label)
		if err != nil {
			return err
		}
		mechs, err := s.mechanisms()
		if err != nil {
			return err
		}
		// The first mode the probe would try (KWP where the token lists it).
		mode := h.cfg.twoStepModes(func(m uint) bool { _, ok := mechs[m]; return ok })[0]
		blob, err = s.wrap(o, pub, alg, mode)
		return err
	})
	return blob, err
}

// GenerateSecretForTest creates a token generic secret of n bytes labelled
// label (CKA_SENSITIVE as given), for studying how the token wraps secrets
// whose length is not one of the KMS key sizes.
func (h *HSM) GenerateSecretForTest(ctx context.Context, label string, n int, sensitive bool) error {
	return h.withSession(ctx, func(s session) error {
		_, err := s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, n),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, sensitive),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, KeyID(label)),
		})
		return s.wrapMechErr("C_GenerateKey", pkcs11.CKM_GENERIC_SECRET_KEY_GEN, err)
	})
}

// CountSessionObjectsForTest counts the session (CKA_TOKEN false) objects
// visible to one pooled session.
func (h *HSM) CountSessionObjectsForTest(ctx context.Context) (int, error) {
	n := 0
	err := h.withSession(ctx, func(s session) error {
		objs, err := s.findObjects([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)}, 1<<20)
		n = len(objs)
		return err
	})
	return n, err
}

const truncationLabel = "kf-truncation-test"

// TruncationAttempt is one in-token way to obtain a secret key holding an
// exact-length copy of (a prefix of) another key's value, and the CKR code
// the token answered (0: it worked).
type TruncationAttempt struct {
	Name string
	Code uint
}

// TryInTokenTruncationForTest returns the attempts and the number of
// orphans: session objects that a failed call left behind without returning
// a handle (found by label and destroyed before returning). It runs, on throwaway session objects that it
// destroys again, every in-token step the "unwrap the zero-padded PKCS#8
// into a generic secret, derive an exact-length copy, wrap that" plan
// needs: C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) of a private key into a session
// generic secret, the same with CKA_VALUE_LEN in the template, C_DeriveKey
// with each PKCS#11 mechanism that copies or truncates a base key's value,
// and CKM_AES_KEY_WRAP with an explicit RFC 5649 IV (A65959A6 || MLI) as
// the parameter. No value is read.
func (h *HSM) TryInTokenTruncationForTest(ctx context.Context) (attempts []TruncationAttempt, orphans int, err error) {
	var out []TruncationAttempt
	err = h.withSession(ctx, func(s session) error {
		var made []pkcs11.ObjectHandle
		defer func() {
			for _, o := range made {
				_ = s.p.DestroyObject(s.h, o)
			}
			left, _ := s.findObjects([]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, truncationLabel),
			}, 64)
			orphans = len(left)
			for _, o := range left {
				_ = s.p.DestroyObject(s.h, o)
			}
		}()
		k1, err := s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
		})
		if err != nil {
			return s.wrapMechErr("C_GenerateKey", pkcs11.CKM_AES_KEY_GEN, err)
		}
		made = append(made, k1)
		target, err := s.generate(keyspec.MustLookup(keyspec.ECCNISTP256), truncationLabel, false, true, true)
		if err != nil {
			return err
		}
		made = append(made, target)
		if pub, err := s.findObjects([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, truncationLabel),
		}, 4); err == nil {
			made = append(made, pub...)
		}
		kwp := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
		b1, err := s.p.WrapKey(s.h, kwp, k1, target)
		if err != nil {
			return s.wrapMechErr("C_WrapKey", pkcs11.CKM_AES_KEY_WRAP_PAD, err)
		}
		generic := func(extra ...*pkcs11.Attribute) []*pkcs11.Attribute {
			return append([]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, truncationLabel),
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
				pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
				pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			}, extra...)
		}
		record := func(name string, o pkcs11.ObjectHandle, err error) {
			if err == nil && o != 0 {
				made = append(made, o)
			}
			out = append(out, TruncationAttempt{Name: name, Code: codeOf(err)})
		}
		g, err := ctxOf(s.p).UnwrapKey(s.h, kwp, k1, b1, generic(pkcs11.NewAttribute(pkcs11.CKA_DERIVE, true)))
		record("C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) into a generic secret", g, err)
		if err != nil {
			return nil
		}
		const pkcs8P256 = 67 // SoftHSM's EC P-256 PKCS#8 length
		o, err := ctxOf(s.p).UnwrapKey(s.h, kwp, k1, b1, generic(pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, pkcs8P256)))
		record("C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) into a generic secret with CKA_VALUE_LEN", o, err)
		ulong := strconv.IntSize / 8
		for _, d := range []struct {
			name  string
			mech  uint
			param []byte // all-zero: CK_KEY_DERIVATION_STRING_DATA{NULL, 0}, CK_OBJECT_HANDLE 0 or CK_EXTRACT_PARAMS 0
		}{
			{"CKM_CONCATENATE_BASE_AND_DATA", pkcs11.CKM_CONCATENATE_BASE_AND_DATA, make([]byte, 2*ulong)},
			{"CKM_CONCATENATE_DATA_AND_BASE", pkcs11.CKM_CONCATENATE_DATA_AND_BASE, make([]byte, 2*ulong)},
			{"CKM_XOR_BASE_AND_DATA", pkcs11.CKM_XOR_BASE_AND_DATA, make([]byte, 2*ulong)},
			{"CKM_EXTRACT_KEY_FROM_KEY", pkcs11.CKM_EXTRACT_KEY_FROM_KEY, make([]byte, ulong)},
			{"CKM_AES_ECB_ENCRYPT_DATA", pkcs11.CKM_AES_ECB_ENCRYPT_DATA, make([]byte, 2*ulong)},
		} {
			o, err := ctxOf(s.p).DeriveKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(d.mech, d.param)}, g, generic(pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, pkcs8P256)))
			record("C_DeriveKey("+d.name+")", o, err)
		}
		iv := []byte{0xA6, 0x59, 0x59, 0xA6, 0, 0, 0, pkcs8P256}
		_, err = s.p.WrapKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP, iv)}, k1, target)
		record("C_WrapKey(CKM_AES_KEY_WRAP, IV A65959A6||MLI)", 0, err)
		return nil
	})
	return out, orphans, err
}

// ctxOf returns the real module under any fault wrapper, for test helpers
// that call PKCS#11 functions the package itself never uses.
func ctxOf(m module) *pkcs11.Ctx {
	for {
		switch v := m.(type) {
		case *pkcs11.Ctx:
			return v
		case interface{ unwrap() module }:
			m = v.unwrap()
		default:
			return nil
		}
	}
}

// swapModuleForTest puts wrap(the live module) under the pool; restore
// puts the real module back.
func (h *HSM) swapModuleForTest(wrap func(module) module) (restore func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	real := h.p
	h.p = wrap(real)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.p = real
	}
}

// ResetProbeForTest forgets the cached capability probe.
func (h *HSM) ResetProbeForTest() {
	h.capMu.Lock()
	defer h.capMu.Unlock()
	h.probed = nil
}

// missModule answers the next misses C_FindObjects calls with no object, as
// SoftHSM2 does for a moment to a session searching for a key another
// session has just created.
type missModule struct {
	module
	mu     sync.Mutex
	misses int
}

func (m *missModule) FindObjects(sh pkcs11.SessionHandle, max int) ([]pkcs11.ObjectHandle, bool, error) {
	objs, more, err := m.module.FindObjects(sh, max)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.misses > 0 && len(objs) > 0 {
		m.misses--
		return nil, false, err
	}
	return objs, more, err
}

// MissFindsForTest makes the next misses searches that would find an
// object find none; restore puts the real module back.
func (h *HSM) MissFindsForTest(misses int) (restore func()) {
	return h.swapModuleForTest(func(real module) module { return &missModule{module: real, misses: misses} })
}

// keygenFailModule answers the next fails C_GenerateKey calls with
// CKR_TEMPLATE_INCONSISTENT, as SoftHSM2 does under its object-store race.
type keygenFailModule struct {
	module
	mu    sync.Mutex
	fails int
}

func (m *keygenFailModule) GenerateKey(sh pkcs11.SessionHandle, mech []*pkcs11.Mechanism, tmpl []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {
	m.mu.Lock()
	fail := m.fails > 0
	if fail {
		m.fails--
	}
	m.mu.Unlock()
	if fail {
		return 0, pkcs11.Error(pkcs11.CKR_TEMPLATE_INCONSISTENT)
	}
	return m.module.GenerateKey(sh, mech, tmpl)
}

// FailKeygenForTest makes the next fails C_GenerateKey calls fail with
// CKR_TEMPLATE_INCONSISTENT; restore puts the real module back.
func (h *HSM) FailKeygenForTest(fails int) (restore func()) {
	return h.swapModuleForTest(func(real module) module { return &keygenFailModule{module: real, fails: fails} })
}

// KWPTrial is one AES key wrap of a token key under a session AES key
// whose value the test reads (a throwaway, non-sensitive session key).
type KWPTrial struct {
	KEK      []byte // the session AES-256 key's value
	Reported int    // what the size query (C_WrapKey with a NULL buffer) answered
	PlainErr error  // miekg/pkcs11's WrapKey (size query, then a buffer of that size)
	Blob     []byte // wrapKeyNoParams's output
}

// KWPTrialForTest wraps the key labelled label with mech (no parameters)
// under a fresh session AES-256 key, the way the two-step wrap does.
func (h *HSM) KWPTrialForTest(ctx context.Context, label string, mech uint) (KWPTrial, error) {
	var tr KWPTrial
	err := h.withSession(ctx, func(s session) error {
		o, _, err := s.findKey(label)
		if err != nil {
			return err
		}
		kek, err := s.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, "kf-test-kek"),
		})
		if err != nil {
			return s.wrapErr("C_GenerateKey(test KEK)", err)
		}
		defer s.p.DestroyObject(s.h, kek)
		a, err := s.p.GetAttributeValue(s.h, kek, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return s.wrapErr("C_GetAttributeValue(test KEK)", err)
		}
		tr.KEK = a[0].Value
		if tr.Reported, err = wrapKeySizeQuery(h.cfg.Module, s.h, mech, kek, o); err != nil {
			return s.wrapMechErr("C_WrapKey(size query)", mech, err)
		}
		_, tr.PlainErr = s.p.WrapKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, kek, o)
		tr.Blob, err = s.wrapKeyNoParams(mech, kek, o)
		return s.wrapMechErr("C_WrapKey", mech, err)
	})
	return tr, err
}

// WrapKeyFunctionsForTest returns the module's C_WrapKey as this package
// finds it in the function list and as the library exports it.
func WrapKeyFunctionsForTest(path string) (fromList, exported uintptr, err error) {
	fn, err := wrapKeyFn(path)
	if err != nil {
		return 0, 0, err
	}
	return uintptr(fn), uintptr(exportedWrapKey(path)), nil
}

// otherKeyModule is a token that claims its wrap mechanisms and wraps the
// wrong key: every C_WrapKey of a secret or EC private key wraps a fresh
// session key of the same kind instead (valid format, wrong bytes).
type otherKeyModule struct {
	module
	path string
}

func (m *otherKeyModule) unwrap() module { return m.module }

// decoy makes a session key like key; it returns key itself for kinds it
// does not imitate (RSA: too slow to generate per call).
func (m *otherKeyModule) decoy(sh pkcs11.SessionHandle, key pkcs11.ObjectHandle) (pkcs11.ObjectHandle, func(), error) {
	a, err := m.module.GetAttributeValue(sh, key, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return 0, nil, err
	}
	class, kt := ulong(a[0].Value), ulong(a[1].Value)
	common := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "kf-decoy"),
	}
	switch {
	case class == pkcs11.CKO_SECRET_KEY:
		l, err := m.module.GetAttributeValue(sh, key, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil)})
		if err != nil {
			return 0, nil, err
		}
		gen := uint(pkcs11.CKM_AES_KEY_GEN)
		if kt == pkcs11.CKK_GENERIC_SECRET {
			gen = pkcs11.CKM_GENERIC_SECRET_KEY_GEN
		}
		o, err := m.module.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(gen, nil)}, append(common,
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, ulong(l[0].Value)),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		))
		return o, func() { _ = m.module.DestroyObject(sh, o) }, err
	case class == pkcs11.CKO_PRIVATE_KEY && kt == pkcs11.CKK_EC:
		p, err := m.module.GetAttributeValue(sh, key, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil)})
		if err != nil {
			return 0, nil, err
		}
		pub, priv, err := m.module.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, p[0].Value)},
			append(common, pkcs11.NewAttribute(pkcs11.CKA_SIGN, true)))
		return priv, func() { _ = m.module.DestroyObject(sh, priv); _ = m.module.DestroyObject(sh, pub) }, err
	}
	return key, func() {}, nil
}

func (m *otherKeyModule) WrapKey(sh pkcs11.SessionHandle, mech []*pkcs11.Mechanism, wk, key pkcs11.ObjectHandle) ([]byte, error) {
	d, done, err := m.decoy(sh, key)
	if err != nil {
		return nil, err
	}
	defer done()
	return m.module.WrapKey(sh, mech, wk, d)
}

func (m *otherKeyModule) WrapKeyGrown(sh pkcs11.SessionHandle, mech uint, wk, key pkcs11.ObjectHandle, slack int) ([]byte, error) {
	d, done, err := m.decoy(sh, key)
	if err != nil {
		return nil, err
	}
	defer done()
	return wrapKeyGrown(m.path, sh, mech, wk, d, slack)
}

// WrapOtherKeysForTest makes the token wrap a fresh key of the same kind
// instead of the one asked for (secrets and EC keys); restore puts the
// real module back.
func (h *HSM) WrapOtherKeysForTest() (restore func()) {
	return h.swapModuleForTest(func(real module) module { return &otherKeyModule{module: real, path: h.cfg.Module} })
}

// GenLockTriesForTest is how many times Generate asks the token for a
// generation lock object before it goes ahead without one.
var GenLockTriesForTest = len(settleDelays) + 1

// SetLockOwnerForTest sets Config.LockOwner of an open HSM.
func (h *HSM) SetLockOwnerForTest(owner string) { h.cfg.LockOwner = owner }

// LeaveGenLockForTest takes label's generation lock as a Generate call of
// owner would and never lets it go: what a process killed mid-generation
// leaves on the token.
func (h *HSM) LeaveGenLockForTest(ctx context.Context, label, owner string) error {
	holder, err := newLockHolder(owner)
	if err != nil {
		return err
	}
	return h.withSession(ctx, func(s session) error {
		_, err := s.lockGeneration(ctx, label, holder, time.Now)
		return err
	})
}
