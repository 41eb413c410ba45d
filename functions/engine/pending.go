package engine

import (
	"context"

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
// touched.
func (e *Engine) cleanupPendingMaterial(ctx context.Context, g *groups.Group, j *store.Job) {
	if j.NewKey || j.Kind != store.KindRotate || j.Mode != ModeInPlace || j.KeyARN == "" || j.KeyMaterialID == "" {
		return
	}
	pending, err := e.pendingMaterial(ctx, g, j.KeyARN)
	if err != nil || pending != j.KeyMaterialID {
		return
	}
	err = e.call(ctx, g, "DeleteImportedKeyMaterial", func(ctx context.Context) error {
		_, err := e.KMS.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(j.KeyARN), KeyMaterialId: aws.String(pending)})
		return err
	})
	if err != nil {
		e.log().WarnContext(ctx, "cleanup of failed job's pending material failed", "job", j.ID, "key", j.KeyARN, "key_material_id", pending, "error", err.Error())
		return
	}
	e.log().InfoContext(ctx, "deleted failed job's pending material", "job", j.ID, "key", j.KeyARN, "key_material_id", pending)
}
