//go:build cgo

package hsm_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// These tests pin why SoftHSM2 2.6.1 cannot produce an RSA_AES_KEY_WRAP_*
// blob of a key pair whose PKCS#8 length is not a multiple of 8
// (ECC_NIST_P256: 67 bytes, ECC_NIST_P521: 98, RSA: varies per key) without
// the plaintext leaving the token. SoftHSM's WrapKeySym zero-pads the input
// of EVERY symmetric C_WrapKey (CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD,
// CKM_AES_CBC, CKM_DES3_CBC) to a multiple of 8 before the mechanism runs,
// so no object, secret or private, of such a length ever comes out as RFC
// 5649 with the exact MLI; and the token has no mechanism that would make
// an exact-length copy anyway. If a SoftHSM upgrade changes either fact,
// these tests fail and the workaround is worth revisiting.

// TestSoftHSMAESKeyWrapPadZeroPadsSecretKeysToo: a generic secret of n
// bytes wrapped with the two-step RSA_AES_KEY_WRAP_SHA_1 unwraps (pure-Go
// RFC 5649) to its value followed by zeros up to a multiple of 8, exactly
// like a private key's PKCS#8. So "unwrap the padded PKCS#8 into a secret,
// truncate it, wrap the secret" cannot work on this token even with a
// truncation mechanism.
func TestSoftHSMAESKeyWrapPadZeroPadsSecretKeysToo(t *testing.T) {
	ctx := context.Background()
	tok := tokens[0]
	if tok.name != "softhsm2" {
		t.Fatalf("first token is %s, want softhsm2", tok.name)
	}
	priv := kmsWrappingKey(t, keyspec.WrapRSA3072)
	for _, tc := range []struct {
		n, padded int
	}{
		{64, 64},     // aligned: untouched
		{67, 72},     // the length of SoftHSM's P-256 PKCS#8
		{98, 104},    // the length of SoftHSM's P-521 PKCS#8
		{28, 32},     // HMAC_224's key size (KMS wraps HMAC with RSAES_OAEP_* only)
		{1217, 1224}, // an RSA-2048 PKCS#8 length seen here
	} {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			label := newLabel(t, "kwp-secret")
			if err := tok.h.GenerateSecretForTest(ctx, label, tc.n, false); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := tok.h.Destroy(ctx, label, label); err != nil {
					t.Error(err)
				}
			}()
			value, err := tok.h.ReadValueForTest(ctx, label) // non-sensitive test key
			if err != nil || len(value) != tc.n {
				t.Fatalf("CKA_VALUE of the test secret: %d bytes, %v; want %d", len(value), err, tc.n)
			}
			blob, err := tok.h.WrapTwoStepForTest(ctx, label, &priv.PublicKey, keyspec.RSAAESKeyWrapSHA1)
			if err != nil {
				t.Fatal(err)
			}
			material, err := wrapping.Unwrap(priv, keyspec.RSAAESKeyWrapSHA1, blob)
			if err != nil {
				t.Fatalf("reference Unwrap: %v", err)
			}
			if len(material) != tc.padded || !bytes.Equal(material[:tc.n], value) || !bytes.Equal(material[tc.n:], make([]byte, tc.padded-tc.n)) {
				t.Fatalf("%d-byte secret unwraps to %d bytes (prefix equal %v); want the value + %d zero bytes",
					tc.n, len(material), len(material) >= tc.n && bytes.Equal(material[:tc.n], value), tc.padded-tc.n)
			}
		})
	}
}

// TestSoftHSMOffersNoInTokenTruncation: every in-token step that could turn
// the zero-padded PKCS#8 into an exact-length secret is refused by SoftHSM
// 2.6.1, with these return codes. It also pins a SoftHSM leak: the
// C_UnwrapKey refused with CKR_ATTRIBUTE_READ_ONLY still leaves a session
// object behind without returning its handle (the hook finds it by label
// and destroys it, so the session object count ends where it started).
func TestSoftHSMOffersNoInTokenTruncation(t *testing.T) {
	ctx := context.Background()
	tok := tokens[0]
	if tok.name != "softhsm2" {
		t.Fatalf("first token is %s, want softhsm2", tok.name)
	}
	want := map[string]uint{
		// Unwrapping the padded blob into a session generic secret works ...
		"C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) into a generic secret": pkcs11.CKR_OK,
		// ... but its length cannot be set on unwrap,
		"C_UnwrapKey(CKM_AES_KEY_WRAP_PAD) into a generic secret with CKA_VALUE_LEN": pkcs11.CKR_ATTRIBUTE_READ_ONLY,
		// no copy/truncate derivation exists (2.6.1 derives only DH, ECDH and *_ENCRYPT_DATA),
		"C_DeriveKey(CKM_CONCATENATE_BASE_AND_DATA)": pkcs11.CKR_MECHANISM_INVALID,
		"C_DeriveKey(CKM_CONCATENATE_DATA_AND_BASE)": pkcs11.CKR_MECHANISM_INVALID,
		"C_DeriveKey(CKM_XOR_BASE_AND_DATA)":         pkcs11.CKR_MECHANISM_INVALID,
		"C_DeriveKey(CKM_EXTRACT_KEY_FROM_KEY)":      pkcs11.CKR_MECHANISM_INVALID,
		// *_ENCRYPT_DATA needs an AES/DES base key (and would encrypt host data, not copy the base),
		"C_DeriveKey(CKM_AES_ECB_ENCRYPT_DATA)": pkcs11.CKR_KEY_TYPE_INCONSISTENT,
		// and RFC 3394 with the RFC 5649 IV (A65959A6 || exact MLI) as parameter is refused.
		"C_WrapKey(CKM_AES_KEY_WRAP, IV A65959A6||MLI)": pkcs11.CKR_ARGUMENTS_BAD,
	}
	before, err := tok.h.CountSessionObjectsForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, orphans, err := tok.h.TryInTokenTruncationForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if orphans != 1 {
		t.Errorf("failed calls left %d orphan session objects, want 1 (the refused C_UnwrapKey)", orphans)
	}
	seen := map[string]bool{}
	for _, a := range got {
		seen[a.Name] = true
		w, ok := want[a.Name]
		if !ok {
			t.Errorf("unexpected attempt %q", a.Name)
			continue
		}
		if a.Code != w {
			t.Errorf("%s: 0x%X (%v), want 0x%X (%v)", a.Name, a.Code, pkcs11.Error(a.Code), w, pkcs11.Error(w))
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("attempt %q did not run", name)
		}
	}
	after, err := tok.h.CountSessionObjectsForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("session objects %d -> %d: the attempts left objects behind", before, after)
	}
}
