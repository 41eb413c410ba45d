//go:build cgo

package hsm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// IdentityKey is the agent's HSM-resident EC P-256 signing key (CKA_SENSITIVE
// true, CKA_EXTRACTABLE false). It signs wrap results; the control plane
// pins PublicDER. It satisfies shared/protocol.Signer.
type IdentityKey struct {
	h      *HSM
	label  string
	pubDER []byte
}

// Identity returns the identity key labelled label, creating it if missing.
func (h *HSM) Identity(ctx context.Context, label string) (*IdentityKey, error) {
	if label == "" {
		return nil, fmt.Errorf("hsm: identity key label is empty")
	}
	var der []byte
	created := false
	genMu.Lock()
	defer genMu.Unlock()
	err := h.withSession(ctx, func(s session) error {
		_, ok, err := s.findByLabel(label, pkcs11.CKO_PRIVATE_KEY)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := s.generateEC("P-256", label, true, true, false, nil); err != nil {
				if errors.Is(err, ErrUnsupportedMechanism) || codeOf(err) == pkcs11.CKR_MECHANISM_INVALID {
					return &UnsupportedError{Token: h.token, Spec: "identity EC P-256", Mechanism: mechName(pkcs11.CKM_EC_KEY_PAIR_GEN), Reason: codeName(codeOf(err))}
				}
				return err
			}
			created = true
		}
		der, err = s.publicKeyDER(label)
		return err
	})
	if err != nil {
		return nil, err
	}
	h.log.Info("hsm identity key ready", "label", label, "created", created)
	return &IdentityKey{h: h, label: label, pubDER: der}, nil
}

// Label returns the identity key's label.
func (k *IdentityKey) Label() string { return k.label }

// PublicDER returns the DER SubjectPublicKeyInfo of the identity key.
func (k *IdentityKey) PublicDER() []byte { return append([]byte(nil), k.pubDER...) }

// SignDigest signs a SHA-256 digest in the token (CKM_ECDSA) and returns an
// ASN.1 DER ECDSA signature.
func (k *IdentityKey) SignDigest(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("hsm: digest is %d bytes, want %d", len(digest), sha256.Size)
	}
	return k.h.Sign(ctx, k.label, ECDSADigest, digest)
}
