//go:build cgo

package hsm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// signer is shared/protocol.Signer, restated so this test does not depend on it.
type signer interface {
	SignDigest(ctx context.Context, digest []byte) ([]byte, error)
}

var _ signer = (*hsm.IdentityKey)(nil)

func TestGenerateRefusesExistingLabelAndCreatesNothing(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		label := tok.key(t, keyspec.SymmetricDefault, true)
		before, err := tok.h.CountObjects(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tok.h.Generate(ctx, label, keyspec.HMAC256)
		var ke *hsm.KeyExistsError
		if !errors.As(err, &ke) || !errors.Is(err, hsm.ErrKeyExists) || ke.Label != label {
			t.Fatalf("Generate over %q: %v, want *KeyExistsError", label, err)
		}
		if _, err := tok.h.Generate(ctx, "not-a-kf-label", keyspec.HMAC256); !errors.Is(err, hsm.ErrBadLabel) {
			t.Fatalf("Generate with a bad label: %v, want ErrBadLabel", err)
		}
		after, _ := tok.h.CountObjects(ctx)
		if after != before {
			t.Fatalf("refused Generate changed the object count %d -> %d", before, after)
		}
		k, err := tok.h.Find(ctx, label)
		if err != nil || k.Spec != keyspec.SymmetricDefault || string(k.ID) != string(hsm.KeyID(label)) {
			t.Fatalf("Find(%q) = %+v, %v", label, k, err)
		}
	})
}

// Unsupported and illegal combinations give typed errors naming the
// mechanism and the token, and create nothing.
func TestUnsupportedCombinationsAreTypedAndCreateNothing(t *testing.T) {
	ctx := context.Background()
	priv := kmsWrappingKey(t, keyspec.WrapRSA2048)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	forEachToken(t, func(t *testing.T, tok *token) {
		tok.key(t, keyspec.RSA2048, true)
		tok.key(t, keyspec.SymmetricDefault, true)
		before, _ := tok.h.CountObjects(ctx)
		var cases []struct {
			name, label string
			alg         keyspec.WrappingAlgorithm
			mech        string
		}
		if tok.name != "nss" { // NSS wraps RSA private keys (two-step with CKM_AES_KEY_WRAP_KWP)
			cases = append(cases, struct {
				name, label string
				alg         keyspec.WrappingAlgorithm
				mech        string
			}{"rsa-key-hybrid", tok.key(t, keyspec.RSA2048, true), keyspec.RSAAESKeyWrapSHA256, "CKM_"})
		}
		if tok.name == "softhsm2" {
			cases = append(cases, struct {
				name, label string
				alg         keyspec.WrappingAlgorithm
				mech        string
			}{"oaep-sha256", tok.key(t, keyspec.SymmetricDefault, true), keyspec.RSAESOAEPSHA256, "CKM_RSA_PKCS_OAEP"})
		}
		for _, c := range cases {
			_, err := tok.h.Wrap(ctx, c.label, der, c.alg)
			var ue *hsm.UnsupportedError
			if !errors.As(err, &ue) || !errors.Is(err, hsm.ErrUnsupportedMechanism) ||
				!strings.Contains(err.Error(), c.mech) || ue.Token != tok.cfg.TokenLabel {
				t.Errorf("%s: %v, want *UnsupportedError naming %s and token %s", c.name, err, c.mech, tok.cfg.TokenLabel)
			}
		}
		// Illegal per KMS: symmetric with a hybrid algorithm.
		_, err := tok.h.Wrap(ctx, tok.key(t, keyspec.SymmetricDefault, true), der, keyspec.RSAAESKeyWrapSHA1)
		var ie *keyspec.IllegalCombinationError
		if !errors.As(err, &ie) {
			t.Errorf("illegal combination: %v, want *keyspec.IllegalCombinationError", err)
		}
		if tok.name == "opencryptoki" || tok.name == "nss" {
			// opencryptoki 3.8 has no EC keygen; NSS 3.87 has no secp256k1.
			spec := keyspec.ECCNISTP256
			if tok.name == "nss" {
				spec = keyspec.ECCSECGP256K1
			}
			before, _ = tok.h.CountObjects(ctx)
			_, err := tok.h.Generate(ctx, newLabel(t, "ec"), spec)
			var ue *hsm.UnsupportedError
			if !errors.As(err, &ue) || ue.Mechanism != "CKM_EC_KEY_PAIR_GEN" {
				t.Errorf("%s keygen on %s: %v, want *UnsupportedError naming CKM_EC_KEY_PAIR_GEN", spec, tok.name, err)
			}
		}
		if after, _ := tok.h.CountObjects(ctx); after != before {
			t.Fatalf("refused requests changed the object count %d -> %d", before, after)
		}
	})
}

func TestDestroyNeedsConfirmation(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		label := newLabel(t, "shred")
		if _, err := tok.h.Generate(ctx, label, keyspec.RSA2048); err != nil {
			t.Fatal(err)
		}
		before, _ := tok.h.CountObjects(ctx)
		for _, confirm := range []string{"", label + " ", strings.ToUpper(label)} {
			if err := tok.h.Destroy(ctx, label, confirm); !errors.Is(err, hsm.ErrConfirmMismatch) {
				t.Fatalf("Destroy with confirm %q: %v, want ErrConfirmMismatch", confirm, err)
			}
		}
		if n, _ := tok.h.CountObjects(ctx); n != before {
			t.Fatalf("refused Destroy changed the object count %d -> %d", before, n)
		}
		if err := tok.h.Destroy(ctx, label, label); err != nil {
			t.Fatal(err)
		}
		if n, _ := tok.h.CountObjects(ctx); n != before-2 {
			t.Fatalf("Destroy of a key pair: %d objects, want %d", n, before-2)
		}
		if _, err := tok.h.Find(ctx, label); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("Find after Destroy: %v, want ErrKeyNotFound", err)
		}
		if err := tok.h.Destroy(ctx, label, label); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("second Destroy: %v, want ErrKeyNotFound", err)
		}
	})
}

// Invariant 3 (blobs signed by an HSM-resident agent identity): the identity
// key is created once, signs in the token, verifies under PublicDER, and
// cannot be wrapped out (CKA_EXTRACTABLE false).
func TestIdentityKeyIsHSMResidentAndSigns(t *testing.T) {
	ctx := context.Background()
	tok := tokens[0] // opencryptoki 3.8 has no EC keygen (see hsmtest tests)
	id, err := tok.h.Identity(ctx, "kf-agent-identity")
	if err != nil {
		t.Fatal(err)
	}
	again, err := tok.h.Identity(ctx, "kf-agent-identity")
	if err != nil || string(again.PublicDER()) != string(id.PublicDER()) {
		t.Fatalf("second Identity: %v, or a different key", err)
	}
	pub, err := x509.ParsePKIXPublicKey(id.PublicDER())
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("wrap_result"))
	sig, err := id.SignDigest(ctx, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("identity signature does not verify under PublicDER")
	}
	if _, err := id.SignDigest(ctx, digest[:16]); err == nil {
		t.Fatal("SignDigest accepted a 16-byte digest")
	}
	priv := kmsWrappingKey(t, keyspec.WrapRSA3072)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if blob, err := tok.h.WrapTwoStepForTest(ctx, "kf-agent-identity", &priv.PublicKey, keyspec.RSAAESKeyWrapSHA1); err == nil {
		t.Fatalf("identity key was wrapped out (%d bytes)", len(blob))
	}
	_ = der
}
