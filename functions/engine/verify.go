package engine

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"github.com/keyferry/keyferry/functions/pacer"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// verify proves the imported material works and matches the HSM key:
//   - symmetric: an Encrypt/Decrypt round trip through KMS and, in place,
//     that DescribeKey.CurrentKeyMaterialId moved to the new material;
//   - HMAC: KMS GenerateMac of the request's challenge equals the MAC the
//     HSM computed (ChallengeMAC in the signed wrap_result);
//   - asymmetric: KMS GetPublicKey equals the HSM public key, and (for
//     SIGN_VERIFY keys) a KMS signature verifies under it.
//
// A mismatch is a failure (the job fails with the reason; no alias moves).
func (e *Engine) verify(ctx context.Context, g *groups.Group, j *store.Job) error {
	info := g.Info()
	switch info.Family {
	case keyspec.FamilySymmetric:
		return e.verifySymmetric(ctx, g, j)
	case keyspec.FamilyHMAC:
		return e.verifyHMAC(ctx, g, j, info)
	default:
		return e.verifyAsymmetric(ctx, g, j, info)
	}
}

func (e *Engine) verifySymmetric(ctx context.Context, g *groups.Group, j *store.Job) error {
	if j.Mode == ModeInPlace && !j.NewKey {
		d, err := e.describe(ctx, g, j.KeyARN)
		if err != nil {
			return err
		}
		cur := aws.ToString(d.CurrentKeyMaterialId)
		if cur == j.PreviousKeyMaterialID || cur != j.KeyMaterialID {
			return failf("verification failed: CurrentKeyMaterialId is %q, want the new material %q (previous %q)", cur, j.KeyMaterialID, j.PreviousKeyMaterialID)
		}
	}
	if j.Kind == store.KindReimport {
		// Restoring an in-place key after the kill switch: the key stays
		// PendingImport until every one of its materials is back, so the
		// round trip can only run once the last re-import lands. KMS
		// accepted EXISTING_KEY_MATERIAL under this KeyMaterialId, which it
		// does only for the identical bytes.
		waiting, err := e.keyAwaitsOtherMaterials(ctx, g, j)
		if err != nil {
			return err
		}
		if waiting {
			return nil
		}
	}
	probe := make([]byte, 32)
	_, _ = rand.Read(probe)
	ctxKV := map[string]string{"keyferry:verify": j.ID}
	var enc *kms.EncryptOutput
	err := e.call(ctx, g, pacer.OpEncrypt, func(ctx context.Context) (err error) {
		enc, err = e.verifyKMS().Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(j.KeyARN), Plaintext: probe, EncryptionContext: ctxKV})
		return err
	})
	if err != nil {
		return failf("verification failed: kms Encrypt: %v", err)
	}
	var dec *kms.DecryptOutput
	err = e.call(ctx, g, pacer.OpDecrypt, func(ctx context.Context) (err error) {
		dec, err = e.verifyKMS().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ctxKV})
		return err
	})
	if err != nil {
		return failf("verification failed: kms Decrypt: %v", err)
	}
	if !bytes.Equal(dec.Plaintext, probe) || aws.ToString(dec.KeyId) != j.KeyARN {
		return failf("verification failed: Encrypt/Decrypt round trip through %s did not return the probe", j.KeyARN)
	}
	return nil
}

func macAlgorithm(info keyspec.Info) types.MacAlgorithmSpec {
	switch info.Spec {
	case keyspec.HMAC224:
		return types.MacAlgorithmSpecHmacSha224
	case keyspec.HMAC384:
		return types.MacAlgorithmSpecHmacSha384
	case keyspec.HMAC512:
		return types.MacAlgorithmSpecHmacSha512
	}
	return types.MacAlgorithmSpecHmacSha256
}

func (e *Engine) verifyHMAC(ctx context.Context, g *groups.Group, j *store.Job, info keyspec.Info) error {
	if len(j.Challenge) == 0 || len(j.ChallengeMAC) == 0 {
		return failf("verification failed: no HSM MAC of the challenge in the wrap_result")
	}
	var out *kms.GenerateMacOutput
	err := e.call(ctx, g, pacer.OpGenerateMac, func(ctx context.Context) (err error) {
		out, err = e.verifyKMS().GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(j.KeyARN), Message: j.Challenge, MacAlgorithm: macAlgorithm(info)})
		return err
	})
	if err != nil {
		return failf("verification failed: kms GenerateMac: %v", err)
	}
	if !bytes.Equal(out.Mac, j.ChallengeMAC) {
		return failf("verification failed: KMS HMAC of the challenge differs from the HSM's: KMS holds other material")
	}
	return nil
}

// parsePublic parses a DER SPKI, including secp256k1 (which crypto/x509 lacks).
func parsePublic(der []byte) (crypto.PublicKey, error) {
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		return pub, nil
	}
	pub, err := secp256k1.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a known public key: %w", err)
	}
	return pub, nil
}

type equaler interface{ Equal(crypto.PublicKey) bool }

func signingSetup(info keyspec.Info) (types.SigningAlgorithmSpec, crypto.Hash) {
	if info.Family == keyspec.FamilyRSA {
		return types.SigningAlgorithmSpecRsassaPssSha256, crypto.SHA256
	}
	switch info.Spec {
	case keyspec.ECCNISTP384:
		return types.SigningAlgorithmSpecEcdsaSha384, crypto.SHA384
	case keyspec.ECCNISTP521:
		return types.SigningAlgorithmSpecEcdsaSha512, crypto.SHA512
	}
	return types.SigningAlgorithmSpecEcdsaSha256, crypto.SHA256
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	}
	d := sha256.Sum256(msg)
	return d[:]
}

func (e *Engine) verifyAsymmetric(ctx context.Context, g *groups.Group, j *store.Job, info keyspec.Info) error {
	if len(j.PublicKey) == 0 {
		return failf("verification failed: no HSM public key in the wrap_result")
	}
	hsmPub, err := parsePublic(j.PublicKey)
	if err != nil {
		return failf("verification failed: HSM public key: %v", err)
	}
	var gp *kms.GetPublicKeyOutput
	err = e.call(ctx, g, pacer.OpGetPublicKey, func(ctx context.Context) (err error) {
		gp, err = e.verifyKMS().GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(j.KeyARN)})
		return err
	})
	if err != nil {
		return failf("verification failed: kms GetPublicKey: %v", err)
	}
	kmsPub, err := parsePublic(gp.PublicKey)
	if err != nil {
		return failf("verification failed: KMS public key: %v", err)
	}
	eq, ok := kmsPub.(equaler)
	if !ok || !eq.Equal(hsmPub) {
		return failf("verification failed: KMS public key of %s differs from the HSM public key", j.KeyARN)
	}
	if g.KeyUsage != keyspec.SignVerify {
		return nil
	}
	alg, h := signingSetup(info)
	msg := make([]byte, 32)
	_, _ = rand.Read(msg)
	d := digest(h, msg)
	var sig *kms.SignOutput
	err = e.call(ctx, g, pacer.OpSign, func(ctx context.Context) (err error) {
		sig, err = e.verifyKMS().Sign(ctx, &kms.SignInput{KeyId: aws.String(j.KeyARN), Message: d, MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
		return err
	})
	if err != nil {
		return failf("verification failed: kms Sign: %v", err)
	}
	if !verifySignature(hsmPub, h, d, sig.Signature) {
		return failf("verification failed: KMS signature does not verify under the HSM public key")
	}
	return nil
}

// keyAwaitsOtherMaterials reports whether j's key is PendingImport only
// because other generations on it are still KILLED (their re-imports have
// not landed yet).
func (e *Engine) keyAwaitsOtherMaterials(ctx context.Context, g *groups.Group, j *store.Job) (bool, error) {
	d, err := e.describe(ctx, g, j.KeyARN)
	if err != nil {
		return false, err
	}
	if d.KeyState != types.KeyStatePendingImport {
		return false, nil
	}
	gens, err := e.Store.Generations(ctx, g.Name)
	if err != nil {
		return false, err
	}
	key := j.KeyARN
	if j.PrimaryKeyARN != "" {
		key = j.PrimaryKeyARN // a replica's materials are its primary's generations
	}
	for _, gen := range gens {
		if gen.KeyARN == key && gen.Generation != j.Generation && gen.State == store.GenKilled {
			return true, nil
		}
	}
	return false, nil
}
