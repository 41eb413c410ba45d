package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/kmsregions"
)

// The kill switch, policy sync, the previous key's disable and a failed
// job's cleanup on every Region of a multi-Region group. Re-imports
// (keepalive, restore, sync import) go through stepReplicas like a
// rotation. Each replica is addressed by its ARN: related multi-Region
// keys share their key id, only the Region of the ARN differs (KMS
// developer guide, multi-Region keys: "the same key ID"); the store keeps
// the primary's. A Region that fails is named and leaves the others as
// they are.

// regionKeys are keyARN's keys in every Region of g: the primary first.
func regionKeys(g *groups.Group, keyARN string) []RegionKey {
	out := []RegionKey{{Region: g.Region, KeyARN: keyARN}}
	if !kmsregions.IsMultiRegionARN(keyARN) {
		return out // a single-Region key has no replicas
	}
	for _, r := range g.Replicas {
		out = append(out, RegionKey{Region: r, KeyARN: kmsregions.ReplicaARN(keyARN, r)})
	}
	return out
}

// killGeneration deletes gen's material in every Region of g. A key or
// material already gone (NotFoundException, or a key already
// PendingImport) counts as killed, so a re-run finishes what a failed
// Region left. It returns an error naming each Region that failed.
func (e *Engine) killGeneration(ctx context.Context, g *groups.Group, gen *store.Generation) error {
	var errs []error
	for _, k := range regionKeys(g, gen.KeyARN) {
		c, err := e.replicaIn(g, k.Region)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		in := &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(k.KeyARN)}
		if g.Info().Family == keyspec.FamilySymmetric && gen.KeyMaterialID != "" {
			in.KeyMaterialId = aws.String(gen.KeyMaterialID)
		}
		err = e.callIn(ctx, g, k.Region, pacer.OpDeleteImportedKeyMaterial, func(ctx context.Context) error {
			_, err := c.DeleteImportedKeyMaterial(ctx, in)
			return err
		})
		if apiCode(err) == "KMSInvalidStateException" && e.pendingImportIn(ctx, g, c, k) {
			err = nil
		}
		if err != nil && apiCode(err) != "NotFoundException" {
			what := fmt.Sprintf("kms DeleteImportedKeyMaterial %s/%s", k.KeyARN, gen.KeyMaterialID)
			if k.Region != g.Region {
				what = "region " + k.Region + ": " + what
			}
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	return errors.Join(errs...)
}

// pendingImportIn reports whether k is PendingImport (its material is gone).
func (e *Engine) pendingImportIn(ctx context.Context, g *groups.Group, c replicaKMS, k RegionKey) bool {
	var d *kms.DescribeKeyOutput
	err := e.callIn(ctx, g, k.Region, pacer.OpDescribeKey, func(ctx context.Context) (err error) {
		d, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.KeyARN)})
		return err
	})
	return err == nil && d.KeyMetadata.KeyState == types.KeyStatePendingImport
}

// inReplicas runs f with the KMS client of each replica Region of keyARN
// (none for a single-Region key); a replica that does not exist
// (NotFoundException) is skipped. Errors name their Region.
func (e *Engine) inReplicas(ctx context.Context, g *groups.Group, keyARN string, f func(ctx context.Context, c replicaKMS, k RegionKey) error) error {
	var errs []error
	for _, k := range regionKeys(g, keyARN)[1:] {
		c, err := e.replicaIn(g, k.Region)
		if err == nil {
			err = f(ctx, c, k)
		}
		if err != nil && apiCode(err) != "NotFoundException" {
			errs = append(errs, fmt.Errorf("region %s: %w", k.Region, err))
		}
	}
	return errors.Join(errs...)
}

// putPolicyInReplicas puts the group's key policy on keyARN's replicas.
func (e *Engine) putPolicyInReplicas(ctx context.Context, g *groups.Group, keyARN string) error {
	return e.inReplicas(ctx, g, keyARN, func(ctx context.Context, c replicaKMS, k RegionKey) error {
		return e.callIn(ctx, g, k.Region, pacer.OpPutKeyPolicy, func(ctx context.Context) error {
			_, err := c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(k.KeyARN), Policy: aws.String(string(g.Policy)), PolicyName: aws.String("default")})
			return err
		})
	})
}

// disableReplicas disables keyARN's replicas (previous_key: disable).
func (e *Engine) disableReplicas(ctx context.Context, g *groups.Group, keyARN string) error {
	return e.inReplicas(ctx, g, keyARN, func(ctx context.Context, c replicaKMS, k RegionKey) error {
		return e.callIn(ctx, g, k.Region, pacer.OpDisableKey, func(ctx context.Context) error {
			_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k.KeyARN)})
			return err
		})
	})
}

// cleanupReplicas removes the replicas of a failed job's new key (their
// material deleted, their deletion scheduled) before the primary's: KMS
// deletes a primary only once it has no replicas (ScheduleKeyDeletion of
// a primary with replicas waits in PendingReplicaDeletion).
func (e *Engine) cleanupReplicas(ctx context.Context, g *groups.Group, keyARN string) error {
	return e.inReplicas(ctx, g, keyARN, func(ctx context.Context, c replicaKMS, k RegionKey) error {
		var d *kms.DescribeKeyOutput
		if err := e.callIn(ctx, g, k.Region, pacer.OpDescribeKey, func(ctx context.Context) (err error) {
			d, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k.KeyARN)})
			return err
		}); err != nil {
			return err
		}
		switch d.KeyMetadata.KeyState {
		case types.KeyStatePendingDeletion:
			return nil
		case types.KeyStatePendingImport:
		default:
			_ = e.callIn(ctx, g, k.Region, pacer.OpDeleteImportedKeyMaterial, func(ctx context.Context) error {
				_, err := c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(k.KeyARN)})
				return err
			})
		}
		return e.callIn(ctx, g, k.Region, pacer.OpScheduleKeyDeletion, func(ctx context.Context) error {
			_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(k.KeyARN), PendingWindowInDays: aws.Int32(7)})
			return err
		})
	})
}
