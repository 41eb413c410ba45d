//go:build cgo

package hsm

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Destroy shreds every token object labelled label (secret key, or private
// and public key). It is the only way keyferry deletes key material, and it
// refuses unless confirmLabel equals label (ErrConfirmMismatch).
func (h *HSM) Destroy(ctx context.Context, label, confirmLabel string) error {
	if label == "" || confirmLabel != label {
		return fmt.Errorf("%w: label %q, confirmation %q", ErrConfirmMismatch, label, confirmLabel)
	}
	n := 0
	err := h.withSession(ctx, func(s session) error {
		objs, err := s.findObjects([]*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}, 16)
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return &KeyNotFoundError{Label: label, Token: h.token}
		}
		for _, o := range objs {
			if err := s.p.DestroyObject(s.h, o); err != nil {
				return s.wrapErr("C_DestroyObject", err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.log.Warn("hsm key destroyed", "label", label, "objects", n)
	return nil
}

// CountObjects counts the token objects visible to the logged-in user, so
// tests can prove that a refused request created nothing.
func (h *HSM) CountObjects(ctx context.Context) (int, error) {
	n := 0
	err := h.withSession(ctx, func(s session) error {
		objs, err := s.findObjects([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true)}, 1<<20)
		n = len(objs)
		return err
	})
	return n, err
}
