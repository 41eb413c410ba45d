package engine_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// before is data made with the group's alias before a rotation, checked
// after it (old ciphertexts decrypt, old MACs and signatures verify).
type before struct {
	keyARN     string
	ciphertext []byte
	mac        []byte
	sig        []byte
	msg        []byte
}

func (h *harness) useAlias(alias string, spec keyspec.Spec) before {
	h.t.Helper()
	ctx := h.ctx
	md := h.aliasTarget(alias)
	b := before{keyARN: aws.ToString(md.Arn), msg: []byte("made before the rotation")}
	var err error
	switch keyspec.MustLookup(spec).Family {
	case keyspec.FamilySymmetric:
		var out *kms.EncryptOutput
		out, err = h.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: b.msg})
		if err == nil {
			b.ciphertext = out.CiphertextBlob
		}
	case keyspec.FamilyHMAC:
		var out *kms.GenerateMacOutput
		out, err = h.kms.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(alias), Message: b.msg, MacAlgorithm: macAlg(spec)})
		if err == nil {
			b.mac = out.Mac
		}
	default:
		alg, d := signSetup(spec, b.msg)
		var out *kms.SignOutput
		out, err = h.kms.Sign(ctx, &kms.SignInput{KeyId: aws.String(alias), Message: d, MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: alg})
		if err == nil {
			b.sig = out.Signature
		}
	}
	if err != nil {
		h.t.Fatalf("use %s before rotation: %v", alias, err)
	}
	return b
}

func (h *harness) checkBefore(b before, spec keyspec.Spec) {
	h.t.Helper()
	ctx := h.ctx
	switch keyspec.MustLookup(spec).Family {
	case keyspec.FamilySymmetric:
		out, err := h.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: b.ciphertext})
		if err != nil || !bytes.Equal(out.Plaintext, b.msg) {
			h.t.Fatalf("ciphertext from before the rotation no longer decrypts: %v", err)
		}
	case keyspec.FamilyHMAC:
		out, err := h.kms.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(b.keyARN), Message: b.msg, Mac: b.mac, MacAlgorithm: macAlg(spec)})
		if err != nil || !out.MacValid {
			h.t.Fatalf("MAC from before the rotation no longer verifies: %v", err)
		}
	default:
		alg, d := signSetup(spec, b.msg)
		out, err := h.kms.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(b.keyARN), Message: d, MessageType: kmstypes.MessageTypeDigest, Signature: b.sig, SigningAlgorithm: alg})
		if err != nil || !out.SignatureValid {
			h.t.Fatalf("signature from before the rotation no longer verifies: %v", err)
		}
	}
}

// checkMaterialMatchesHSM compares KMS with the HSM twin independently of
// the engine's own verification: HMAC of a fresh message, public keys.
// (Symmetric equality is proven by re-import: see TestKeepalive.)
func (h *harness) checkMaterialMatchesHSM(ctx context.Context, g *store.Generation, spec keyspec.Spec) {
	h.t.Helper()
	info := keyspec.MustLookup(spec)
	switch info.Family {
	case keyspec.FamilyHMAC:
		msg := []byte("independent check " + g.HSMLabel)
		want, err := theHSM.HMAC(ctx, g.HSMLabel, msg)
		if err != nil {
			h.t.Fatal(err)
		}
		out, err := h.kms.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(g.KeyARN), Message: msg, MacAlgorithm: macAlg(spec)})
		if err != nil || !bytes.Equal(out.Mac, want) {
			h.t.Fatalf("KMS MAC differs from the HSM MAC: %v", err)
		}
	case keyspec.FamilyRSA, keyspec.FamilyECC:
		want, err := theHSM.PublicKeyDER(ctx, g.HSMLabel)
		if err != nil {
			h.t.Fatal(err)
		}
		out, err := h.kms.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(g.KeyARN)})
		if err != nil {
			h.t.Fatal(err)
		}
		a, err1 := parsePub(want)
		b, err2 := parsePub(out.PublicKey)
		if err1 != nil || err2 != nil || !a.(interface{ Equal(crypto.PublicKey) bool }).Equal(b) {
			h.t.Fatalf("KMS public key differs from the HSM public key (%v %v)", err1, err2)
		}
	}
}

// TestFullRotationEverySampleSpecAndMode: for every sample key spec and
// each mode it supports, two rotations end SUCCEEDED, the alias points at
// the newest generation, KMS material matches the HSM key, and data made
// with the alias before the second rotation is still usable.
func TestFullRotationEverySampleSpecAndMode(t *testing.T) {
	cases := []struct {
		spec keyspec.Spec
		mode string
	}{
		{keyspec.SymmetricDefault, "alias-swap"},
		{keyspec.SymmetricDefault, "in-place"},
		{keyspec.SymmetricDefault, "hybrid"},
		{keyspec.HMAC256, "alias-swap"},
		{keyspec.HMAC512, "alias-swap"},
		{keyspec.ECCNISTP384, "alias-swap"},
		{keyspec.ECCSECGP256K1, "alias-swap"},
	}
	for _, tc := range cases {
		t.Run(string(tc.spec)+"/"+tc.mode, func(t *testing.T) {
			g := uniq("g")
			usage := ""
			if keyspec.MustLookup(tc.spec).Asymmetric() {
				usage = "    key_usage: SIGN_VERIFY\n"
			}
			h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: %s\n%s    mode: %s\n    alias: alias/%s\n", g, tc.spec, usage, tc.mode, g))
			alias := "alias/" + g
			j1 := h.rotate(g, "r1")
			h.requireState(j1, store.StateSucceeded)
			if got := aws.ToString(h.aliasTarget(alias).Arn); got != j1.KeyARN {
				t.Fatalf("alias -> %s, want first key %s", got, j1.KeyARN)
			}
			b := h.useAlias(alias, tc.spec)
			j2 := h.rotate(g, "r2")
			h.requireState(j2, store.StateSucceeded)
			md := h.aliasTarget(alias)
			if aws.ToString(md.Arn) != j2.KeyARN || md.KeyState != kmstypes.KeyStateEnabled {
				t.Fatalf("alias -> %s (%s), want newest key %s enabled", aws.ToString(md.Arn), md.KeyState, j2.KeyARN)
			}
			switch tc.mode {
			case "alias-swap":
				if j2.KeyARN == j1.KeyARN {
					t.Fatal("alias-swap rotation reused the key")
				}
			default:
				if j2.KeyARN != j1.KeyARN || j2.Mode != "in-place" {
					t.Fatalf("in-place rotation: key %s mode %s, want same key %s in place", j2.KeyARN, j2.Mode, j1.KeyARN)
				}
				if aws.ToString(md.CurrentKeyMaterialId) != j2.KeyMaterialID || j2.KeyMaterialID == j1.KeyMaterialID {
					t.Fatalf("CurrentKeyMaterialId %s, job recorded %s (first %s)", aws.ToString(md.CurrentKeyMaterialId), j2.KeyMaterialID, j1.KeyMaterialID)
				}
			}
			latest, err := h.st.Latest(h.ctx, g)
			if err != nil || latest.Generation != 2 || latest.KeyARN != j2.KeyARN || latest.State != store.GenCurrent {
				t.Fatalf("latest generation %+v %v", latest, err)
			}
			h.checkMaterialMatchesHSM(h.ctx, latest, tc.spec)
			h.checkBefore(b, tc.spec)
		})
	}
}

// TestHybridAfterCapCreatesNewKeyAndMovesAlias: with rotation_cap 2, the
// first key takes two in-place rotations, the next rotation makes a new key.
func TestHybridAfterCapCreatesNewKeyAndMovesAlias(t *testing.T) {
	g := uniq("hyb")
	h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: hybrid\n    rotation_cap: 2\n    alias: alias/%s\n", g, g))
	alias := "alias/" + g
	first := h.rotate(g, "r0") // creates the key
	h.requireState(first, store.StateSucceeded)
	var jobs []*store.Job
	for i := 1; i <= 3; i++ {
		b := h.useAlias(alias, keyspec.SymmetricDefault)
		j := h.rotate(g, fmt.Sprintf("r%d", i))
		h.requireState(j, store.StateSucceeded)
		h.checkBefore(b, keyspec.SymmetricDefault)
		jobs = append(jobs, j)
	}
	if jobs[0].KeyARN != first.KeyARN || jobs[1].KeyARN != first.KeyARN || jobs[0].Mode != "in-place" || jobs[1].Mode != "in-place" {
		t.Fatalf("rotations before the cap were not in place: %s/%s %s/%s", jobs[0].Mode, jobs[0].KeyARN, jobs[1].Mode, jobs[1].KeyARN)
	}
	if jobs[2].KeyARN == first.KeyARN || !jobs[2].NewKey {
		t.Fatalf("rotation after the cap stayed on %s", jobs[2].KeyARN)
	}
	if got := aws.ToString(h.aliasTarget(alias).Arn); got != jobs[2].KeyARN {
		t.Fatalf("alias -> %s, want the new key %s", got, jobs[2].KeyARN)
	}
}

func macAlg(spec keyspec.Spec) kmstypes.MacAlgorithmSpec {
	return kmstypes.MacAlgorithmSpec("HMAC_SHA_" + strings.TrimPrefix(string(spec), "HMAC_"))
}

func signSetup(spec keyspec.Spec, msg []byte) (kmstypes.SigningAlgorithmSpec, []byte) {
	switch spec {
	case keyspec.ECCNISTP384:
		d := sha512.Sum384(msg)
		return kmstypes.SigningAlgorithmSpecEcdsaSha384, d[:]
	case keyspec.RSA2048, keyspec.RSA3072, keyspec.RSA4096:
		d := sha256.Sum256(msg)
		return kmstypes.SigningAlgorithmSpecRsassaPssSha256, d[:]
	}
	d := sha256.Sum256(msg)
	return kmstypes.SigningAlgorithmSpecEcdsaSha256, d[:]
}

func parsePub(der []byte) (crypto.PublicKey, error) {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		return k, nil
	}
	return secp256k1.ParsePKIXPublicKey(der)
}
