package engine

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// Multi-Region groups (groups.Group.Replicas). The building blocks the
// rotation steps use for a group whose key is one multi-Region key: a
// primary in the group's Region and a replica in each Region of Replicas,
// with the same key id and the same material (KMS API reference, botocore
// service model 2014-11-01: ReplicateKey "creates a multi-Region replica
// key ... the replica key is created with no key material. You must import
// the same key material that you imported into the primary key";
// ImportKeyMaterial: NEW_KEY_MATERIAL on the primary, "the same key material
// imported to the primary Region key" as EXISTING_KEY_MATERIAL into "every
// replica Region key before you can perform the RotateKeyOnDemand operation
// on the primary Region key"). KMS calls of a Region go to that Region's
// client (Engine.Regional) and are paced in that account-Region's scope.

// KMSAPI is the slice of the KMS client the engine uses (a *kms.Client).
type KMSAPI = kmsAPI

// RegionKey is one Region's key of a multi-Region group.
type RegionKey struct {
	Region string
	KeyARN string
}

// kmsIn returns the KMS client of region for g.
func (e *Engine) kmsIn(g *groups.Group, region string) (kmsAPI, error) {
	if region == g.Region {
		return e.KMS, nil
	}
	if e.Regional == nil {
		return nil, failf("group %s has a replica in %s but the control plane has no KMS client for that Region", g.Name, region)
	}
	c, err := e.Regional(region)
	if err != nil {
		return nil, failf("group %s: KMS client for %s: %v", g.Name, region, err)
	}
	return c, nil
}

// callIn runs one KMS operation of region through the pacer, in the
// account-Region's own scope (quotas are per account and Region).
func (e *Engine) callIn(ctx context.Context, g *groups.Group, region string, op pacer.Op, f func(context.Context) error) error {
	return e.Pacer.Do(ctx, g.Account+"/"+region, string(op), f)
}

// EnsureReplicas makes sure the multi-Region primary primaryARN has a
// replica in every Region of g.Replicas (ReplicateKey for the missing ones,
// with the group's policy, tags and description) and returns the primary
// followed by the replicas, in the group's order. A single-Region key can
// never gain replicas: that is a failure naming what the operator can do.
func (e *Engine) EnsureReplicas(ctx context.Context, g *groups.Group, primaryARN string) ([]RegionKey, error) {
	md, err := e.describe(ctx, g, primaryARN)
	if err != nil {
		return nil, err
	}
	if !aws.ToBool(md.MultiRegion) || md.MultiRegionConfiguration == nil {
		return nil, failf("group %s lists replicas %v but its key %s is single-Region (MultiRegion is fixed when a key is created); "+
			"an alias-swap rotation creates a new multi-Region key", g.Name, g.Replicas, primaryARN)
	}
	if md.MultiRegionConfiguration.MultiRegionKeyType != types.MultiRegionKeyTypePrimary {
		return nil, failf("key %s of group %s is a multi-Region replica, not the primary in %s", primaryARN, g.Name, g.Region)
	}
	have := map[string]string{}
	for _, r := range md.MultiRegionConfiguration.ReplicaKeys {
		have[aws.ToString(r.Region)] = aws.ToString(r.Arn)
	}
	out := []RegionKey{{Region: g.Region, KeyARN: primaryARN}}
	for _, region := range g.Replicas {
		if arn, ok := have[region]; ok {
			out = append(out, RegionKey{Region: region, KeyARN: arn})
			continue
		}
		in := &kms.ReplicateKeyInput{KeyId: aws.String(primaryARN), ReplicaRegion: aws.String(region),
			Description: md.Description}
		if len(g.Policy) > 0 {
			in.Policy = aws.String(string(g.Policy))
		}
		for k, v := range g.Tags() {
			in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
		}
		var r *kms.ReplicateKeyOutput
		err := e.call(ctx, g, pacer.OpReplicateKey, func(ctx context.Context) (err error) {
			r, err = e.replicaKMS().ReplicateKey(ctx, in)
			return err
		})
		switch {
		case apiCode(err) == "AlreadyExistsException":
			// Made by an earlier attempt whose answer was lost: find it there.
			c, cerr := e.replicaIn(g, region)
			if cerr != nil {
				return nil, cerr
			}
			var d *kms.DescribeKeyOutput
			if err := e.callIn(ctx, g, region, pacer.OpDescribeKey, func(ctx context.Context) (err error) {
				d, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
				return err
			}); err != nil {
				return nil, fmt.Errorf("region %s: kms DescribeKey %s: %w", region, aws.ToString(md.KeyId), err)
			}
			out = append(out, RegionKey{Region: region, KeyARN: aws.ToString(d.KeyMetadata.Arn)})
		case err != nil:
			return nil, fmt.Errorf("region %s: kms ReplicateKey %s: %w", region, primaryARN, err)
		default:
			out = append(out, RegionKey{Region: region, KeyARN: aws.ToString(r.ReplicaKeyMetadata.Arn)})
			e.log().InfoContext(ctx, "replica created", "group", g.Name, "region", region, "key", aws.ToString(r.ReplicaKeyMetadata.Arn))
		}
	}
	return out, nil
}

// VerifyAcross proves the Regions' keys hold the same material, as a job of
// a multi-Region group must before it SUCCEEDS: a ciphertext made in each
// Region decrypts in every other (symmetric); a MAC is the same in every
// Region (HMAC); every Region's public key is the same, and a signature
// made in each Region verifies under every other Region's public key
// (asymmetric). A mismatch is a failure naming the Region.
func (e *Engine) VerifyAcross(ctx context.Context, g *groups.Group, keys []RegionKey) error {
	info := g.Info()
	clients := make([]verifyKMS, len(keys))
	for i, k := range keys {
		c, err := e.kmsIn(g, k.Region)
		if err != nil {
			return err
		}
		clients[i] = c
	}
	msg := make([]byte, 32)
	_, _ = rand.Read(msg)
	switch {
	case info.Symmetric():
		for i, a := range keys {
			var ct *kms.EncryptOutput
			if err := e.callIn(ctx, g, a.Region, pacer.OpEncrypt, func(ctx context.Context) (err error) {
				ct, err = clients[i].Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(a.KeyARN), Plaintext: msg})
				return err
			}); err != nil {
				return failf("verification failed in region %s: kms Encrypt: %v", a.Region, err)
			}
			for j, b := range keys {
				if j == i {
					continue
				}
				var pt *kms.DecryptOutput
				if err := e.callIn(ctx, g, b.Region, pacer.OpDecrypt, func(ctx context.Context) (err error) {
					pt, err = clients[j].Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(b.KeyARN), CiphertextBlob: ct.CiphertextBlob})
					return err
				}); err != nil {
					return failf("verification failed in region %s: a ciphertext made in %s does not decrypt: %v", b.Region, a.Region, err)
				}
				if !bytes.Equal(pt.Plaintext, msg) {
					return failf("verification failed in region %s: a ciphertext made in %s decrypts to other bytes", b.Region, a.Region)
				}
			}
		}
		return nil
	case info.Family == keyspec.FamilyHMAC:
		var first []byte
		for i, a := range keys {
			var out *kms.GenerateMacOutput
			if err := e.callIn(ctx, g, a.Region, pacer.OpGenerateMac, func(ctx context.Context) (err error) {
				out, err = clients[i].GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(a.KeyARN), Message: msg, MacAlgorithm: macAlgorithm(info)})
				return err
			}); err != nil {
				return failf("verification failed in region %s: kms GenerateMac: %v", a.Region, err)
			}
			if i == 0 {
				first = out.Mac
			} else if !bytes.Equal(out.Mac, first) {
				return failf("verification failed in region %s: its MAC differs from %s's: the Regions hold different material", a.Region, keys[0].Region)
			}
		}
		return nil
	}
	pubs := make([]crypto.PublicKey, len(keys))
	var firstDER []byte
	for i, a := range keys {
		var gp *kms.GetPublicKeyOutput
		if err := e.callIn(ctx, g, a.Region, pacer.OpGetPublicKey, func(ctx context.Context) (err error) {
			gp, err = clients[i].GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(a.KeyARN)})
			return err
		}); err != nil {
			return failf("verification failed in region %s: kms GetPublicKey: %v", a.Region, err)
		}
		if i == 0 {
			firstDER = gp.PublicKey
		} else if !bytes.Equal(gp.PublicKey, firstDER) {
			return failf("verification failed in region %s: its public key differs from %s's", a.Region, keys[0].Region)
		}
		pub, err := parsePublic(gp.PublicKey)
		if err != nil {
			return failf("verification failed in region %s: public key: %v", a.Region, err)
		}
		pubs[i] = pub
	}
	if g.KeyUsage != keyspec.SignVerify {
		return nil
	}
	alg, h := signingSetup(info)
	d := digest(h, msg)
	for i, a := range keys {
		var sig *kms.SignOutput
		if err := e.callIn(ctx, g, a.Region, pacer.OpSign, func(ctx context.Context) (err error) {
			sig, err = clients[i].Sign(ctx, &kms.SignInput{KeyId: aws.String(a.KeyARN), Message: d, MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
			return err
		}); err != nil {
			return failf("verification failed in region %s: kms Sign: %v", a.Region, err)
		}
		for j, b := range keys {
			if j != i && !verifySignature(pubs[j], h, d, sig.Signature) {
				return failf("verification failed: a signature made in %s does not verify under %s's public key", a.Region, b.Region)
			}
		}
	}
	return nil
}

// verifySignature checks a KMS signature (ECDSA ASN.1, RSASSA-PSS,
// secp256k1) of digest d under pub.
func verifySignature(pub crypto.PublicKey, h crypto.Hash, d, sig []byte) bool {
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, d, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPSS(pub, h, d, sig, nil) == nil
	case *secp256k1.PublicKey:
		return secp256k1.Verify(pub, d, sig)
	}
	return false
}

// regional returns the engine and group a step of j runs with: the primary's
// (e, g) normally; while j imports into a replica (j.Region), a copy of e
// whose KMS client is that Region's and a copy of g whose Region is the
// replica's (so pacing scope, wrap_request and import go to that Region).
func (e *Engine) regional(g *groups.Group, j *store.Job) (*Engine, *groups.Group, error) {
	if j.Region == "" || j.Region == g.Region {
		return e, g, nil
	}
	c, err := e.kmsIn(g, j.Region)
	if err != nil {
		return nil, nil, err
	}
	re := *e
	re.KMS = c
	return &re, regionalGroup(g, j), nil
}

// regionalGroup is g as a step of j sees it: g itself normally; while j
// imports into a replica (j.Region), a copy of g whose Region is the
// replica's (regional).
func regionalGroup(g *groups.Group, j *store.Job) *groups.Group {
	if j.Region == "" || j.Region == g.Region {
		return g
	}
	rg := *g
	rg.Region, rg.Replicas = j.Region, nil
	return &rg
}

// regionReason names the Region in a failure of a replica's step.
func regionReason(j *store.Job, reason string) string {
	if j.Region == "" {
		return reason
	}
	return "region " + j.Region + " (replica " + j.KeyARN + "): " + reason
}

// stepInRegion runs j's next step. For a multi-Region rotation, a
// verified key (primary or replica) first goes to stepReplicas, which
// sends the job round again for the next replica Region or, once every
// Region is imported and verified, lets the primary's switch run.
func (e *Engine) stepInRegion(ctx context.Context, g *groups.Group, j *store.Job) error {
	if j.State == store.StateImported && g.MultiRegion() && inPlaceRotation(j) {
		done, err := e.stepInPlaceReplicas(ctx, g, j)
		if err != nil || !done {
			return err
		}
	}
	if j.State == store.StateVerified && g.MultiRegion() {
		done, err := e.stepReplicas(ctx, g, j)
		if err != nil || !done {
			return err
		}
	}
	re, rg, err := e.regional(g, j)
	if err != nil {
		return err
	}
	return re.step(ctx, rg, j)
}

// stepReplicas: the primary (or the replica of j.Region) is verified. A
// re-import (keepalive, restore, sync) goes the same way: the same HSM key
// rewrapped for each Region, EXISTING_KEY_MATERIAL there, verified, and
// no alias moves. The
// next replica Region not in RegionsDone gets the same HSM key: j goes back
// to KEY_READY for it (its own GetParametersForImport, a rewrap of the HSM
// key under that Region's wrapping key, ImportKeyMaterial there, verify).
// When none is left, the Regions are verified against each other, each
// replica Region's alias is moved to its replica, and done is true: the
// primary's switch follows.
func (e *Engine) stepReplicas(ctx context.Context, g *groups.Group, j *store.Job) (bool, error) {
	if j.Region != "" && j.Region != g.Region && !slices.Contains(j.RegionsDone, j.Region) {
		j.RegionsDone = append(j.RegionsDone, j.Region)
	}
	primary := j.PrimaryKeyARN
	if primary == "" {
		primary = j.KeyARN
	}
	keys, err := e.EnsureReplicas(ctx, g, primary)
	if err != nil {
		return false, err
	}
	if next, err := e.nextReplica(ctx, j, primary, keys, "import the same material"); next || err != nil {
		return false, err
	}
	j.Region, j.KeyARN = "", primary
	if inPlaceRotation(j) {
		if err := e.replicasRotated(ctx, g, j, keys); err != nil {
			return false, err
		}
	}
	// Restoring one of several materials of an in-place key: the key stays
	// PendingImport until the last one is back, whose job verifies across.
	waiting := false
	if j.Kind == store.KindReimport && g.Info().Symmetric() {
		if waiting, err = e.regionsAwaitOtherMaterials(ctx, g, j, keys); err != nil {
			return false, err
		}
	}
	if !waiting {
		if err := e.VerifyAcross(ctx, g, keys); err != nil {
			return false, err
		}
	}
	if j.NewKey {
		// From the first replica alias on, the key may hold data: a
		// cleanup of this job never deletes it (cleanupNewKey).
		err := e.attempt(ctx, j, flagAliasMove, func() error {
			for _, k := range keys[1:] {
				if err := e.aliasIn(ctx, g, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// aliasIn points the group's alias in k.Region at k.KeyARN (one alias per
// Region: aliases are not shared by related multi-Region keys).
func (e *Engine) aliasIn(ctx context.Context, g *groups.Group, k RegionKey) error {
	c, err := e.replicaIn(g, k.Region)
	if err != nil {
		return err
	}
	err = e.callIn(ctx, g, k.Region, pacer.OpUpdateAlias, func(ctx context.Context) error {
		_, err := c.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(g.Alias), TargetKeyId: aws.String(k.KeyARN)})
		return err
	})
	if apiCode(err) == "NotFoundException" {
		err = e.callIn(ctx, g, k.Region, pacer.OpCreateAlias, func(ctx context.Context) error {
			_, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(g.Alias), TargetKeyId: aws.String(k.KeyARN)})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("region %s: kms alias %s -> %s: %w", k.Region, g.Alias, k.KeyARN, err)
	}
	return nil
}

// In-place rotation across Regions (KMS API reference, ImportKeyMaterial:
// for a multi-Region key, import NEW_KEY_MATERIAL into the primary, then
// "the same key material imported to the primary Region key" as
// EXISTING_KEY_MATERIAL into every replica "before you can perform the
// RotateKeyOnDemand operation on the primary Region key"; until then the
// primary's new material is PENDING_MULTI_REGION_IMPORT_AND_ROTATION, then
// PENDING_ROTATION; RotateKeyOnDemand on the primary rotates the replicas).

// inPlaceRotation reports whether j rotates a key in place (new material
// on the same key), the only job that needs the replicas before
// RotateKeyOnDemand.
func inPlaceRotation(j *store.Job) bool {
	return j.Kind == store.KindRotate && j.Mode == ModeInPlace && !j.NewKey
}

// stepInPlaceReplicas: the primary's new material (or a replica's copy of
// it) is imported. The next replica Region not in RegionsDone gets the
// same HSM key as EXISTING_KEY_MATERIAL under the new KeyMaterialId; when
// none is left, done is true with j back on the primary (still IMPORTED),
// whose step then runs RotateKeyOnDemand.
func (e *Engine) stepInPlaceReplicas(ctx context.Context, g *groups.Group, j *store.Job) (bool, error) {
	if j.Region != "" && j.Region != g.Region && !slices.Contains(j.RegionsDone, j.Region) {
		j.RegionsDone = append(j.RegionsDone, j.Region)
	}
	primary := j.PrimaryKeyARN
	if primary == "" {
		primary = j.KeyARN
	}
	if j.KeyMaterialID == "" {
		return false, failf("in-place import into %s returned no KeyMaterialId: the replicas cannot be given the same material", primary)
	}
	keys, err := e.EnsureReplicas(ctx, g, primary)
	if err != nil {
		return false, err
	}
	if next, err := e.nextReplica(ctx, j, primary, keys, "import material "+j.KeyMaterialID); next || err != nil {
		return false, err
	}
	j.Region, j.KeyARN = "", primary
	return true, nil
}

// replicasRotated checks that the primary's on-demand rotation reached
// every replica (CurrentKeyMaterialId is the new material); not yet is a
// retryable error (the step runs again).
func (e *Engine) replicasRotated(ctx context.Context, g *groups.Group, j *store.Job, keys []RegionKey) error {
	for _, k := range keys[1:] {
		c, err := e.replicaIn(g, k.Region)
		if err != nil {
			return err
		}
		var d *kms.DescribeKeyOutput
		if err := e.callIn(ctx, g, k.Region, pacer.OpDescribeKey, func(ctx context.Context) (err error) {
			d, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.KeyARN)})
			return err
		}); err != nil {
			return fmt.Errorf("region %s: kms DescribeKey %s: %w", k.Region, k.KeyARN, err)
		}
		if cur := aws.ToString(d.KeyMetadata.CurrentKeyMaterialId); cur != j.KeyMaterialID {
			return fmt.Errorf("region %s: replica %s's current material is %q, not yet the rotated-to %q", k.Region, k.KeyARN, cur, j.KeyMaterialID)
		}
	}
	return nil
}

// regionsAwaitOtherMaterials reports whether a Region's key of a restore
// is still PendingImport because other generations on the key are KILLED
// (their re-imports have not landed there yet): KMS accepted this job's
// EXISTING_KEY_MATERIAL in each Region, which it does only for the
// identical bytes, and the last restore verifies across Regions.
func (e *Engine) regionsAwaitOtherMaterials(ctx context.Context, g *groups.Group, j *store.Job, keys []RegionKey) (bool, error) {
	gens, err := e.Store.Generations(ctx, g.Name)
	if err != nil {
		return false, err
	}
	others := false
	for _, gen := range gens {
		if gen.KeyARN == keys[0].KeyARN && gen.Generation != j.Generation && gen.State == store.GenKilled {
			others = true
		}
	}
	if !others {
		return false, nil
	}
	for _, k := range keys {
		c, err := e.replicaIn(g, k.Region)
		if err != nil {
			return false, err
		}
		if e.pendingImportIn(ctx, g, c, k) {
			return true, nil
		}
	}
	return false, nil
}

// nextReplica moves j to the first replica of keys not in RegionsDone
// (back to KEY_READY there, with what) and reports whether there was one.
func (e *Engine) nextReplica(ctx context.Context, j *store.Job, primary string, keys []RegionKey, what string) (bool, error) {
	for _, k := range keys[1:] {
		if slices.Contains(j.RegionsDone, k.Region) {
			continue
		}
		j.PrimaryKeyARN, j.Region, j.KeyARN = primary, k.Region, k.KeyARN
		j.WrappingPublicKey, j.ImportToken, j.WrappedMaterial, j.ParametersValidTo = nil, nil, nil, time.Time{}
		return true, e.advance(ctx, j, store.StateKeyReady, "replica "+k.Region+": "+what+" into "+k.KeyARN)
	}
	return false, nil
}
