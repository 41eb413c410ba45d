package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"gopkg.in/yaml.v3"

	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/kmsregions"
)

// Multi-Region groups in the sandbox. The KMS emulator serves every Region
// from one process (the Region of a request is its SigV4 scope's), so a
// replica Region needs no process of its own: the sandbox's clients of
// another Region sign for it at the same endpoint. The agent's local
// policy allows every Region a group of the file lives or replicates in.

// ReplicaSummary is one replica Region of a multi-Region group in the
// --json summary: the replica key, and whether it was verified
// independently of the engine (the group's alias in that Region names the
// replica of the group's current key, the replica is Enabled, and the
// Regions hold the same material: a ciphertext made in one decrypts in the
// other both ways, the MACs are equal, or a signature made in one verifies
// in the other).
type ReplicaSummary struct {
	Region   string `json:"region"`
	KeyARN   string `json:"key_arn"`
	Verified bool   `json:"verified"`
	Reason   string `json:"reason,omitempty"`
}

// KMSIn is an administrator's KMS client of region (the sandbox's own
// set-up and assertions; the functions sign with their roles' keys).
func (s *Sandbox) KMSIn(region string) *kms.Client {
	if region == "" || region == Region {
		return s.KMS
	}
	return kms.NewFromConfig(aws.Config{Region: region, Credentials: staticCreds(), BaseEndpoint: aws.String(s.Endpoints.KMS)})
}

// agentRegions are the Regions of the groups file the sandbox runs (each
// group's Region and its replicas'), for the agent's local policy.
func (s *Sandbox) agentRegions() []string {
	src := defaultGroups
	if s.GroupsFile != "" {
		if b, err := os.ReadFile(s.GroupsFile); err == nil {
			src = b
		}
	}
	var doc struct {
		Defaults struct {
			Region string `yaml:"region"`
		} `yaml:"defaults"`
		Groups []struct {
			Region   string   `yaml:"region"`
			Replicas []string `yaml:"replicas"`
		} `yaml:"groups"`
	}
	seen := map[string]bool{Region: true}
	if yaml.Unmarshal(src, &doc) == nil {
		if doc.Defaults.Region != "" {
			seen[doc.Defaults.Region] = true
		}
		for _, g := range doc.Groups {
			if g.Region != "" {
				seen[g.Region] = true
			}
			for _, r := range g.Replicas {
				seen[r] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// replicaSummaries checks each replica Region of g against the primary
// keyARN (the group's current key).
func (s *Sandbox) replicaSummaries(ctx context.Context, g *groups.Group, keyARN string) []ReplicaSummary {
	var out []ReplicaSummary
	for _, r := range g.Replicas {
		rs := ReplicaSummary{Region: r, KeyARN: kmsregions.ReplicaARN(keyARN, r)}
		if err := s.checkReplica(ctx, g, keyARN, rs); err != nil {
			rs.Reason = err.Error()
		} else {
			rs.Verified = true
		}
		out = append(out, rs)
	}
	return out
}

func (s *Sandbox) checkReplica(ctx context.Context, g *groups.Group, primaryARN string, rs ReplicaSummary) error {
	rc := s.KMSIn(rs.Region)
	d, err := rc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(g.Alias)})
	if err != nil {
		return fmt.Errorf("%s in %s: %w", g.Alias, rs.Region, err)
	}
	if got := aws.ToString(d.KeyMetadata.Arn); got != rs.KeyARN {
		return fmt.Errorf("%s in %s names %s, want the replica %s", g.Alias, rs.Region, got, rs.KeyARN)
	}
	if d.KeyMetadata.KeyState != types.KeyStateEnabled {
		return fmt.Errorf("replica %s is %s", rs.KeyARN, d.KeyMetadata.KeyState)
	}
	return CheckSameMaterial(ctx, g, s.KMS, primaryARN, rc, rs.KeyARN)
}

// CheckSameMaterial proves two Regions' keys of g hold the same material,
// with KMS calls only: for symmetric keys a ciphertext of each decrypts
// under the other; for HMAC both MACs of a message are equal; for
// asymmetric keys the public keys are equal and a signature made by each
// verifies under the other (or a ciphertext of each decrypts under the
// other, RSAES_OAEP_SHA_256).
func CheckSameMaterial(ctx context.Context, g *groups.Group, a *kms.Client, aARN string, b *kms.Client, bARN string) error {
	info := g.Info()
	msg := make([]byte, 32)
	_, _ = rand.Read(msg)
	type side struct {
		c   *kms.Client
		arn string
	}
	pairs := [][2]side{{{a, aARN}, {b, bARN}}, {{b, bARN}, {a, aARN}}}
	switch {
	case info.Symmetric():
		for _, p := range pairs {
			ct, err := p[0].c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(p[0].arn), Plaintext: msg})
			if err != nil {
				return fmt.Errorf("Encrypt under %s: %w", p[0].arn, err)
			}
			pt, err := p[1].c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(p[1].arn), CiphertextBlob: ct.CiphertextBlob})
			if err != nil {
				return fmt.Errorf("a ciphertext of %s does not decrypt under %s: %w", p[0].arn, p[1].arn, err)
			}
			if !bytes.Equal(pt.Plaintext, msg) {
				return fmt.Errorf("a ciphertext of %s decrypts to other bytes under %s", p[0].arn, p[1].arn)
			}
		}
		return nil
	case info.Family == keyspec.FamilyHMAC:
		alg := types.MacAlgorithmSpec(strings.Replace(string(info.Spec), "HMAC_", "HMAC_SHA_", 1))
		var macs [][]byte
		for _, sd := range pairs[0] {
			m, err := sd.c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(sd.arn), Message: msg, MacAlgorithm: alg})
			if err != nil {
				return fmt.Errorf("GenerateMac under %s: %w", sd.arn, err)
			}
			macs = append(macs, m.Mac)
		}
		if !bytes.Equal(macs[0], macs[1]) {
			return fmt.Errorf("the MACs of %s and %s differ", aARN, bARN)
		}
		return nil
	}
	var pubs [][]byte
	for _, sd := range pairs[0] {
		p, err := sd.c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(sd.arn)})
		if err != nil {
			return fmt.Errorf("GetPublicKey of %s: %w", sd.arn, err)
		}
		pubs = append(pubs, p.PublicKey)
	}
	if !bytes.Equal(pubs[0], pubs[1]) {
		return fmt.Errorf("the public keys of %s and %s differ", aARN, bARN)
	}
	for _, p := range pairs {
		if g.KeyUsage == keyspec.SignVerify {
			alg := types.SigningAlgorithmSpecEcdsaSha256
			switch {
			case info.Family == keyspec.FamilyRSA:
				alg = types.SigningAlgorithmSpecRsassaPssSha256
			case info.Spec == keyspec.ECCNISTP384:
				alg = types.SigningAlgorithmSpecEcdsaSha384
			case info.Spec == keyspec.ECCNISTP521:
				alg = types.SigningAlgorithmSpecEcdsaSha512
			}
			sig, err := p[0].c.Sign(ctx, &kms.SignInput{KeyId: aws.String(p[0].arn), Message: msg, SigningAlgorithm: alg})
			if err != nil {
				return fmt.Errorf("Sign under %s: %w", p[0].arn, err)
			}
			v, err := p[1].c.Verify(ctx, &kms.VerifyInput{KeyId: aws.String(p[1].arn), Message: msg, Signature: sig.Signature, SigningAlgorithm: alg})
			if err != nil || !v.SignatureValid {
				return fmt.Errorf("a signature of %s does not verify under %s: %v", p[0].arn, p[1].arn, err)
			}
			continue
		}
		ct, err := p[0].c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(p[0].arn), Plaintext: msg, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		if err != nil {
			return fmt.Errorf("Encrypt under %s: %w", p[0].arn, err)
		}
		pt, err := p[1].c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(p[1].arn), CiphertextBlob: ct.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256})
		if err != nil || !bytes.Equal(pt.Plaintext, msg) {
			return fmt.Errorf("a ciphertext of %s does not decrypt under %s: %v", p[0].arn, p[1].arn, err)
		}
	}
	return nil
}
