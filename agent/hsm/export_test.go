package hsm

import (
	"context"
	"crypto/rsa"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// Test-only hooks (compiled into this package's tests only).

// NonSensitiveForTest generates the key with CKA_SENSITIVE false so a test
// can read CKA_VALUE and compare bytes. Production code cannot reach it.
func NonSensitiveForTest() GenerateOption {
	return func(o *genOptions) { o.nonSensitive = true }
}

// RawCtxForTest returns the underlying module, e.g. to call Finalize under
// a live pool (simulated device loss).
func (h *HSM) RawCtxForTest() *pkcs11.Ctx {
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
		if err != nil {
			return s.wrapErr("C_GetAttributeValue(CKA_VALUE)", err)
		}
		v = a[0].Value
		return nil
	})
	return v, err
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
		if err := s.p.EncryptInit(s.h, m, o); err != nil {
			return s.wrapMechErr("C_EncryptInit", pkcs11.CKM_AES_ECB, err)
		}
		out, err = s.p.Encrypt(s.h, block)
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
		blob, err = s.wrap(o, pub, alg, modeTwoStep)
		return err
	})
	return blob, err
}
