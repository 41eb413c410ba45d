package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/test/sandbox"
)

// proof is something made with a group's alias at one point in time that
// must still check out later: a ciphertext decrypts to its plaintext, a MAC
// or signature verifies under the key that made it.
type proof struct {
	group   string
	keyARN  string // the key the alias named when the proof was made
	message []byte
	blob    []byte // ciphertext, MAC or signature
	family  keyspec.Family
	signAlg kmstypes.SigningAlgorithmSpec
	macAlg  kmstypes.MacAlgorithmSpec
	encAlg  kmstypes.EncryptionAlgorithmSpec // asymmetric ENCRYPT_DECRYPT keys
}

func signingAlgorithm(spec keyspec.Spec) kmstypes.SigningAlgorithmSpec {
	switch spec {
	case "ECC_NIST_P384":
		return kmstypes.SigningAlgorithmSpecEcdsaSha384
	case "ECC_NIST_P521":
		return kmstypes.SigningAlgorithmSpecEcdsaSha512
	case "RSA_2048", "RSA_3072", "RSA_4096":
		return kmstypes.SigningAlgorithmSpecRsassaPssSha256
	}
	return kmstypes.SigningAlgorithmSpecEcdsaSha256
}

// makeProof uses g's alias (as an application would) and records which key
// answered.
func makeProof(t *testing.T, s *sandbox.Sandbox, g *groups.Group) proof {
	t.Helper()
	ctx := testCtx(t)
	p := proof{group: g.Name, message: []byte("keyferry e2e " + g.Name + " " + t.Name()), family: g.Info().Family}
	p.keyARN = aws.ToString(describe(t, s, g.Alias).Arn)
	switch p.family {
	case keyspec.FamilySymmetric:
		out, err := s.KMS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(g.Alias), Plaintext: p.message})
		if err != nil {
			t.Fatalf("Encrypt %s: %v", g.Alias, err)
		}
		p.blob = out.CiphertextBlob
	case keyspec.FamilyHMAC:
		p.macAlg = kmstypes.MacAlgorithmSpec("HMAC_SHA_" + string(g.KeySpec[len("HMAC_"):]))
		out, err := s.KMS.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(g.Alias), Message: p.message, MacAlgorithm: p.macAlg})
		if err != nil {
			t.Fatalf("GenerateMac %s: %v", g.Alias, err)
		}
		p.blob = out.Mac
	case keyspec.FamilyRSA:
		if g.KeyUsage != keyspec.EncryptDecrypt {
			p.signAlg = signingAlgorithm(g.KeySpec)
			out, err := s.KMS.Sign(ctx, &kms.SignInput{KeyId: aws.String(g.Alias), Message: p.message, MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: p.signAlg})
			if err != nil {
				t.Fatalf("Sign %s: %v", g.Alias, err)
			}
			p.blob = out.Signature
			break
		}
		p.encAlg = kmstypes.EncryptionAlgorithmSpecRsaesOaepSha256
		out, err := s.KMS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(g.Alias), Plaintext: p.message, EncryptionAlgorithm: p.encAlg})
		if err != nil {
			t.Fatalf("Encrypt %s: %v", g.Alias, err)
		}
		p.blob = out.CiphertextBlob
	default:
		p.signAlg = signingAlgorithm(g.KeySpec)
		out, err := s.KMS.Sign(ctx, &kms.SignInput{KeyId: aws.String(g.Alias), Message: p.message, MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: p.signAlg})
		if err != nil {
			t.Fatalf("Sign %s: %v", g.Alias, err)
		}
		p.blob = out.Signature
	}
	return p
}

// check verifies p now; it returns the KMS error (nil when p checks out)
// and fails the test if KMS answered but the answer was wrong.
func (p proof) check(t *testing.T, s *sandbox.Sandbox) error {
	t.Helper()
	ctx := testCtx(t)
	switch p.family {
	case keyspec.FamilySymmetric:
		out, err := s.KMS.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: p.blob})
		if err != nil {
			return err
		}
		if string(out.Plaintext) != string(p.message) || aws.ToString(out.KeyId) != p.keyARN {
			t.Errorf("%s: Decrypt gave %q under %s, want %q under %s", p.group, out.Plaintext, aws.ToString(out.KeyId), p.message, p.keyARN)
		}
	case keyspec.FamilyHMAC:
		out, err := s.KMS.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: aws.String(p.keyARN), Message: p.message, Mac: p.blob, MacAlgorithm: p.macAlg})
		if err != nil {
			return err
		}
		if !out.MacValid {
			t.Errorf("%s: MAC made before no longer verifies under %s", p.group, p.keyARN)
		}
	case keyspec.FamilyRSA:
		if p.encAlg == "" {
			return p.verify(t, s)
		}
		out, err := s.KMS.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(p.keyARN), CiphertextBlob: p.blob, EncryptionAlgorithm: p.encAlg})
		if err != nil {
			return err
		}
		if string(out.Plaintext) != string(p.message) {
			t.Errorf("%s: RSA Decrypt under %s gave %q, want %q", p.group, p.keyARN, out.Plaintext, p.message)
		}
	default:
		return p.verify(t, s)
	}
	return nil
}

// verify checks a signature proof with KMS Verify.
func (p proof) verify(t *testing.T, s *sandbox.Sandbox) error {
	t.Helper()
	out, err := s.KMS.Verify(testCtx(t), &kms.VerifyInput{KeyId: aws.String(p.keyARN), Message: p.message, MessageType: kmstypes.MessageTypeRaw, Signature: p.blob, SigningAlgorithm: p.signAlg})
	if err != nil {
		return err
	}
	if !out.SignatureValid {
		t.Errorf("%s: signature made before no longer verifies under %s", p.group, p.keyARN)
	}
	return nil
}

func (p proof) mustCheck(t *testing.T, s *sandbox.Sandbox) {
	t.Helper()
	if err := p.check(t, s); err != nil {
		t.Errorf("%s: proof made with %s no longer checks: %v", p.group, p.keyARN, err)
	}
}
