package pacer

// Op is a KMS operation the control plane paces. Engine calls take an Op,
// so a misspelt operation name does not compile instead of silently falling
// back to the default quota.
type Op string

// The operations keyferry calls. Each one in Quotas is paced at its
// published quota; the others (ListKeys, ListResourceTags, PutKeyPolicy,
// ReplicateKey: its quota was not found in the request-quotas page) are
// paced at the default quota of 5 requests/s.
const (
	OpGetParametersForImport    Op = "GetParametersForImport"
	OpCreateKey                 Op = "CreateKey"
	OpUpdateAlias               Op = "UpdateAlias"
	OpCreateAlias               Op = "CreateAlias"
	OpRotateKeyOnDemand         Op = "RotateKeyOnDemand"
	OpImportKeyMaterial         Op = "ImportKeyMaterial"
	OpDeleteImportedKeyMaterial Op = "DeleteImportedKeyMaterial"
	OpEnableKey                 Op = "EnableKey"
	OpDisableKey                Op = "DisableKey"
	OpScheduleKeyDeletion       Op = "ScheduleKeyDeletion"
	OpTagResource               Op = "TagResource"
	OpDescribeKey               Op = "DescribeKey"
	OpListKeyRotations          Op = "ListKeyRotations"
	OpGetKeyRotationStatus      Op = "GetKeyRotationStatus"
	OpGetPublicKey              Op = "GetPublicKey"
	OpSign                      Op = "Sign"
	OpEncrypt                   Op = "Encrypt"
	OpDecrypt                   Op = "Decrypt"
	OpGenerateMac               Op = "GenerateMac"
	OpListKeys                  Op = "ListKeys"
	OpListResourceTags          Op = "ListResourceTags"
	OpPutKeyPolicy              Op = "PutKeyPolicy"
	// OpReplicateKey makes a multi-Region replica (paced in the primary's
	// Region; AWS also counts it as a CreateKey in the replica's).
	OpReplicateKey Op = "ReplicateKey"
)

// Ops lists every Op.
func Ops() []Op {
	return []Op{
		OpGetParametersForImport, OpCreateKey, OpUpdateAlias, OpCreateAlias, OpRotateKeyOnDemand,
		OpImportKeyMaterial, OpDeleteImportedKeyMaterial, OpEnableKey, OpDisableKey, OpScheduleKeyDeletion,
		OpTagResource, OpDescribeKey, OpListKeyRotations, OpGetKeyRotationStatus, OpGetPublicKey,
		OpSign, OpEncrypt, OpDecrypt, OpGenerateMac, OpListKeys, OpListResourceTags, OpPutKeyPolicy, OpReplicateKey,
	}
}
