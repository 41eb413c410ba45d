package engine

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/shared/groups"
)

// The KMS calls the engine makes, by concern. Each concern's code holds
// the KMS client as its own narrow interface, so it can make only its
// calls (the compiler checks); kmsAPI, the Engine's client, is their
// union. The agents' concern (agents.go, pool.go, resume.go, supersede.go)
// makes no KMS call (the wrap_request signer is its own client,
// functions/kmssign); the alarms' concern uses CloudWatch only
// (cloudWatchAPI).

// rotationKMS is what the rotation steps call (steps.go, pending.go):
// create the key, import, rotate in place, move the alias, clean up a
// failed job's key.
type rotationKMS interface {
	CreateKey(ctx context.Context, in *kms.CreateKeyInput, opts ...func(*kms.Options)) (*kms.CreateKeyOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetParametersForImport(ctx context.Context, in *kms.GetParametersForImportInput, opts ...func(*kms.Options)) (*kms.GetParametersForImportOutput, error)
	ImportKeyMaterial(ctx context.Context, in *kms.ImportKeyMaterialInput, opts ...func(*kms.Options)) (*kms.ImportKeyMaterialOutput, error)
	DeleteImportedKeyMaterial(ctx context.Context, in *kms.DeleteImportedKeyMaterialInput, opts ...func(*kms.Options)) (*kms.DeleteImportedKeyMaterialOutput, error)
	ListKeyRotations(ctx context.Context, in *kms.ListKeyRotationsInput, opts ...func(*kms.Options)) (*kms.ListKeyRotationsOutput, error)
	RotateKeyOnDemand(ctx context.Context, in *kms.RotateKeyOnDemandInput, opts ...func(*kms.Options)) (*kms.RotateKeyOnDemandOutput, error)
	GetKeyRotationStatus(ctx context.Context, in *kms.GetKeyRotationStatusInput, opts ...func(*kms.Options)) (*kms.GetKeyRotationStatusOutput, error)
	UpdateAlias(ctx context.Context, in *kms.UpdateAliasInput, opts ...func(*kms.Options)) (*kms.UpdateAliasOutput, error)
	CreateAlias(ctx context.Context, in *kms.CreateAliasInput, opts ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	DisableKey(ctx context.Context, in *kms.DisableKeyInput, opts ...func(*kms.Options)) (*kms.DisableKeyOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, opts ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// verifyKMS is what post-import verification calls (verify.go, and
// VerifyAcross in every Region of a multi-Region key): use the key.
type verifyKMS interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, opts ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
	GenerateMac(ctx context.Context, in *kms.GenerateMacInput, opts ...func(*kms.Options)) (*kms.GenerateMacOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opts ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	Sign(ctx context.Context, in *kms.SignInput, opts ...func(*kms.Options)) (*kms.SignOutput, error)
}

// replicaKMS is what multi-Region groups call in the primary's and the
// replicas' Regions (regions.go, replicas.go): replicate, alias each
// Region, and follow the kill switch, restore and cleanup there.
type replicaKMS interface {
	ReplicateKey(ctx context.Context, in *kms.ReplicateKeyInput, opts ...func(*kms.Options)) (*kms.ReplicateKeyOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	UpdateAlias(ctx context.Context, in *kms.UpdateAliasInput, opts ...func(*kms.Options)) (*kms.UpdateAliasOutput, error)
	CreateAlias(ctx context.Context, in *kms.CreateAliasInput, opts ...func(*kms.Options)) (*kms.CreateAliasOutput, error)
	DeleteImportedKeyMaterial(ctx context.Context, in *kms.DeleteImportedKeyMaterialInput, opts ...func(*kms.Options)) (*kms.DeleteImportedKeyMaterialOutput, error)
	DisableKey(ctx context.Context, in *kms.DisableKeyInput, opts ...func(*kms.Options)) (*kms.DisableKeyOutput, error)
	PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, opts ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, opts ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// maintenanceKMS is what maintenance calls (maintenance.go, orphans.go):
// restore a killed key's policy; find (list, describe, read the tags of)
// and remove keys orphaned by a crash.
type maintenanceKMS interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, opts ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
	ListKeys(ctx context.Context, in *kms.ListKeysInput, opts ...func(*kms.Options)) (*kms.ListKeysOutput, error)
	ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput, opts ...func(*kms.Options)) (*kms.ListResourceTagsOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput, opts ...func(*kms.Options)) (*kms.ScheduleKeyDeletionOutput, error)
}

// kmsAPI is the slice of the KMS client the engine uses: the union of the
// concerns' interfaces.
type kmsAPI interface {
	rotationKMS
	verifyKMS
	replicaKMS
	maintenanceKMS
}

var (
	_ kmsAPI         = (*kms.Client)(nil)
	_ rotationKMS    = (*kms.Client)(nil)
	_ verifyKMS      = (*kms.Client)(nil)
	_ replicaKMS     = (*kms.Client)(nil)
	_ maintenanceKMS = (*kms.Client)(nil)
)

// The concerns' views of the Engine's client.
func (e *Engine) rotationKMS() rotationKMS { return e.KMS }
func (e *Engine) verifyKMS() verifyKMS     { return e.KMS }
func (e *Engine) replicaKMS() replicaKMS   { return e.KMS }

// replicaIn is region's client for g as the multi-Region concern sees it.
func (e *Engine) replicaIn(g *groups.Group, region string) (replicaKMS, error) {
	return e.kmsIn(g, region)
}
