package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// walkthroughMessage is what the seed's CloudHSM walkthrough signs.
const walkthroughMessage = "Testing My Imported Key!"

// TestSeedWalkthroughSignWithKMSVerifyWithHSMPublicKey is the seed's
// CloudHSM BYOK walkthrough with keyferry in the middle: a rotation makes
// the key inside the HSM (NSS softoken here) and imports it (the P-256 key
// with RSAES_OAEP_SHA_256 under an RSA_4096 wrapping key, as the
// walkthrough does; the RSA_2048 key with RSA_AES_KEY_WRAP_SHA_256); KMS
// signs "Testing My Imported Key!" through the AWS SDK; the public key is
// exported from the HSM by PKCS#11 (not from KMS) and `openssl dgst
// -verify` says "Verified OK", and refuses a tampered message. KMS's
// RSASSA_PSS_SHA_256 is PSS with MGF1-SHA-256 and a 32-byte salt (the
// digest length), so openssl verifies it with rsa_pss_saltlen:digest.
func TestSeedWalkthroughSignWithKMSVerifyWithHSMPublicKey(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ctx := testCtx(t)
	stamp := time.Now().UTC().Format("150405.000")

	for _, c := range []struct {
		group, spec, alg string
		wrapAlg, wrapKey string // what the job must have used
		openssl          []string
	}{
		{"token-signing", "ECC_NIST_P256", "ECDSA_SHA_256", "RSAES_OAEP_SHA_256", "RSA_4096",
			[]string{"-sha256"}},
		{"ledger-signing", "RSA_2048", "RSASSA_PSS_SHA_256", "RSA_AES_KEY_WRAP_SHA_256", "",
			[]string{"-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"}},
	} {
		t.Run(c.group, func(t *testing.T) {
			g, ok := s.Groups.Group(c.group)
			if !ok || string(g.KeySpec) != c.spec {
				t.Fatalf("sandbox group %s: %+v, want key spec %s", c.group, g, c.spec)
			}
			// 1. A rotation generates the key in the HSM and imports it.
			j := succeeded(t, s, schedule(t, s, c.group, "e2e-walkthrough-"+stamp).JobID)
			if j.WrappingAlgorithm != c.wrapAlg || (c.wrapKey != "" && j.WrappingKeySpec != c.wrapKey) {
				t.Errorf("job wrapped with %s under %s, want %s under %s", j.WrappingAlgorithm, j.WrappingKeySpec, c.wrapAlg, c.wrapKey)
			}
			gen := latestGeneration(t, s, c.group)
			if gen.JobID != j.ID || gen.KeyARN != j.KeyARN || gen.HSMLabel == "" {
				t.Fatalf("latest generation %+v is not job %s's", gen, j.ID)
			}
			md := describe(t, s, j.KeyARN)
			if md.Origin != kmstypes.OriginTypeExternal || string(md.KeySpec) != c.spec || md.KeyState != kmstypes.KeyStateEnabled {
				t.Fatalf("KMS key %s: origin %s spec %s state %s", j.KeyARN, md.Origin, md.KeySpec, md.KeyState)
			}

			// 2. The public key, from the HSM by PKCS#11.
			h, err := s.OpenHSM(ctx)
			if err != nil {
				t.Fatalf("open the sandbox's HSM: %v", err)
			}
			der, err := h.PublicKeyDER(ctx, gen.HSMLabel)
			h.Close()
			if err != nil {
				t.Fatalf("HSM public key of %s: %v", gen.HSMLabel, err)
			}
			if _, err := x509.ParsePKIXPublicKey(der); err != nil {
				t.Fatalf("HSM public key is no SPKI: %v", err)
			}
			kmsPub, err := s.KMS.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(j.KeyARN)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kmsPub.PublicKey, der) {
				t.Errorf("KMS derived a public key other than the HSM's")
			}
			pubFile := writeFile(t, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

			// 3. KMS signs the walkthrough's message (through the AWS SDK).
			out, err := s.KMS.Sign(ctx, &kms.SignInput{KeyId: aws.String(j.KeyARN), Message: []byte(walkthroughMessage),
				MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: kmstypes.SigningAlgorithmSpec(c.alg)})
			if err != nil {
				t.Fatalf("kms Sign %s: %v", c.alg, err)
			}
			sigFile := writeFile(t, "sig", out.Signature)
			msgFile := writeFile(t, "message.txt", []byte(walkthroughMessage))

			// 4. openssl verifies with the HSM's public key.
			verify := func(file string) (string, error) {
				args := append(append([]string{"dgst"}, c.openssl...), "-verify", pubFile, "-signature", sigFile, file)
				b, err := exec.Command("openssl", args...).CombinedOutput()
				return strings.TrimSpace(string(b)), err
			}
			if got, err := verify(msgFile); err != nil || got != "Verified OK" {
				t.Errorf("openssl dgst -verify: %q (%v), want \"Verified OK\"", got, err)
			} else {
				t.Logf("%s %s signature (%d bytes) of %q: openssl with the HSM's public key: %s", c.spec, c.alg, len(out.Signature), walkthroughMessage, got)
			}
			tampered := writeFile(t, "tampered.txt", []byte(walkthroughMessage+"?"))
			if got, err := verify(tampered); err == nil || !strings.Contains(got, "Verification failure") {
				t.Errorf("openssl accepted the signature over another message: %q (%v)", got, err)
			}
		})
	}
}
