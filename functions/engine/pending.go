package engine

import (
	"context"
	"fmt"
	"github.com/keyferry/keyferry/functions/pacer"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// cleanupPendingMaterial removes the NEW_KEY_MATERIAL a failed in-place job
// imported but never rotated to (state PENDING_ROTATION): left behind it
// would block the next in-place import of the key (KMS holds one pending
// material per key) and stay associated with it. Only the job's own
// material is deleted (DeleteImportedKeyMaterial with its KeyMaterialId),
// and only while it is still pending: current or older materials are never
// touched. When this cleanup cannot run (the import's answer was lost, so
// the id is unknown) or fails, the next in-place job of the group removes
// the leftover before its own import (removeForeignPending).
func (e *Engine) cleanupPendingMaterial(ctx context.Context, g *groups.Group, j *store.Job) {
	if j.PrimaryKeyARN != "" && j.KeyARN != j.PrimaryKeyARN {
		// Failed in a replica Region: the pending material is the
		// primary's (deleting it there deletes the replicas' copies).
		pj := *j
		pj.KeyARN = j.PrimaryKeyARN
		j = &pj
	}
	if j.NewKey || j.Kind != store.KindRotate || j.Mode != ModeInPlace || j.KeyARN == "" || j.KeyMaterialID == "" {
		return
	}
	pending, err := e.pendingMaterial(ctx, g, j.KeyARN)
	if err != nil || pending != j.KeyMaterialID {
		return
	}
	err = e.call(ctx, g, pacer.OpDeleteImportedKeyMaterial, func(ctx context.Context) error {
		_, err := e.rotationKMS().DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(j.KeyARN), KeyMaterialId: aws.String(pending)})
		return err
	})
	if err != nil {
		e.log().WarnContext(ctx, "cleanup of failed job's pending material failed", "job", j.ID, "key", j.KeyARN, "key_material_id", pending, "error", err.Error())
		return
	}
	e.log().InfoContext(ctx, "deleted failed job's pending material", "job", j.ID, "key", j.KeyARN, "key_material_id", pending)
}

// removeForeignPending deletes a PENDING_ROTATION material found on the key
// before this job's first in-place import. It cannot be this job's (the
// job has not imported yet) and no other job of the group is live (group
// lock), so it is the leftover of a failed job whose own cleanup did not
// run or failed. Adopting it instead (KMS answers the import with
// ConflictException) would rotate the key onto another generation's HSM
// key while recording this one's: KMS would no longer match the HSM twin.
func (e *Engine) removeForeignPending(ctx context.Context, g *groups.Group, j *store.Job) error {
	pending, err := e.pendingMaterial(ctx, g, j.KeyARN)
	if err != nil {
		return fmt.Errorf("kms ListKeyRotations %s: %w", j.KeyARN, err)
	}
	if pending == "" {
		return nil
	}
	err = e.call(ctx, g, pacer.OpDeleteImportedKeyMaterial, func(ctx context.Context) error {
		_, err := e.rotationKMS().DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(j.KeyARN), KeyMaterialId: aws.String(pending)})
		return err
	})
	if err != nil && apiCode(err) != "NotFoundException" {
		return fmt.Errorf("kms DeleteImportedKeyMaterial %s/%s (left by an earlier job): %w", j.KeyARN, pending, err)
	}
	e.log().WarnContext(ctx, "deleted pending material left by an earlier job", "job", j.ID, "key", j.KeyARN, "key_material_id", pending)
	return nil
}
