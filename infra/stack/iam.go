package stack

import (
	"fmt"
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
)

func strs(v ...string) *[]*string { return jsii.Strings(v...) }

func statement(actions []string, resources []string, conditions map[string]any) awsiam.PolicyStatement {
	p := &awsiam.PolicyStatementProps{Actions: strs(actions...), Resources: strs(resources...)}
	if conditions != nil {
		p.Conditions = &conditions
	}
	return awsiam.NewPolicyStatement(p)
}

// grantData gives each function only the table access it needs.
func grantData(cp *ControlPlane, t store.Tables) {
	rw := func(fn string, tables ...string) {
		for _, name := range tables {
			cp.Tables[name].GrantReadWriteData(cp.Functions[fn])
		}
	}
	rw(FnConnect, t.Connections)
	// $disconnect hands the wrap requests outstanding at the closed
	// connection over (the engine's agentBroker.HandOver: the jobs in REQUESTED, through the
	// by_state index, back to PARAMS) and on to the worker (jobs.go).
	rw(FnDisconnect, t.Connections, t.Jobs)
	for _, fn := range engineFunctions {
		rw(fn, t.Jobs, t.Generations, t.Connections, t.Triggers, t.Groups, t.Pacing)
	}
	// Functions that talk to agents post through @connections.
	manage := fmt.Sprintf("arn:%s:execute-api:%s:%s:%s/%s/POST/@connections/*",
		*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), *cp.API.ApiId(), Stage)
	closeConn := fmt.Sprintf("arn:%s:execute-api:%s:%s:%s/%s/DELETE/@connections/*",
		*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), *cp.API.ApiId(), Stage)
	for _, fn := range engineFunctions {
		cp.Functions[fn].AddToRolePolicy(statement([]string{"execute-api:ManageConnections"}, []string{manage}, nil))
	}
	// The hello route closes an agent's earlier connection that a newer
	// verified hello superseded (DeleteConnection, engine/supersede.go).
	cp.Functions[FnAgentMessage].AddToRolePolicy(statement([]string{"execute-api:ManageConnections"}, []string{closeConn}, nil))
	// The signing key: kms:Sign for functions that send wrap_requests, GetPublicKey for all engine functions.
	for _, fn := range engineFunctions {
		cp.Functions[fn].AddToRolePolicy(statement([]string{"kms:Sign", "kms:GetPublicKey"}, []string{*cp.SigningKey.KeyArn()},
			map[string]any{"StringEquals": map[string]any{"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}}))
	}
}

// GrantedByNameMax is the most groups the engine's policy names one by one
// (see grantEngine).
const GrantedByNameMax = 40

// grantEngine writes the KMS import permissions with condition keys: no
// kms:*, no Resource * where a narrower resource or condition exists.
func grantEngine(st awscdk.Stack, cp *ControlPlane, gs []groups.Group, p *Props) {
	all := collectGrants(gs, *awscdk.Aws_REGION())
	if len(all.names) == 0 {
		return
	}
	keys := keyARNs(*awscdk.Aws_REGION(), "*")
	// Each group's name is in seven conditions and its alias in one
	// resource list: beyond GrantedByNameMax groups that outgrows IAM's
	// 10,240 characters of inline policy per role (and CDK spills it into
	// overflow managed policies, 10 per role at most). A larger fleet is
	// granted by the group tag's presence (any key keyferry tagged for a
	// group) and every alias of the account-region.
	byName := len(all.names) <= GrantedByNameMax
	tagged := func(key string, names []string) map[string]any {
		if byName {
			return map[string]any{"StringEquals": map[string]any{key: names}}
		}
		return map[string]any{"Null": map[string]any{key: "false"}}
	}
	aliases := all.aliases
	if !byName {
		aliases = []string{fmt.Sprintf("arn:%s:kms:%s:%s:alias/*", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())}
	}
	ownGroup := tagged(resTag, all.names)
	var sts []awsiam.PolicyStatement
	// CreateKey has no resource ARN yet: restrict by origin, spec, the
	// group tag in the request and kms:MultiRegion false: single-Region
	// keys for the groups without replicas (those with replicas:
	// multiRegionPolicy, regions.go).
	if single := collectGrants(filterMultiRegion(gs, false), *awscdk.Aws_REGION()); len(single.names) > 0 {
		sts = append(sts, createKeyStatement(single, false, "", tagged))
	}
	sts = append(sts,
		statement([]string{"kms:TagResource"}, []string{keys}, tagged(reqTag, all.names)),
		statement([]string{"kms:GetParametersForImport"}, []string{keys}, withConditions(all.wrappingConditions(), ownGroup)),
		statement([]string{"kms:ImportKeyMaterial"}, []string{keys}, withConditions(all.expirationConditions(), ownGroup)),
		statement([]string{
			"kms:DescribeKey", "kms:DeleteImportedKeyMaterial", "kms:RotateKeyOnDemand", "kms:GetKeyRotationStatus",
			"kms:ListKeyRotations", "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy",
			"kms:GetKeyPolicy", "kms:ListResourceTags",
		}, []string{keys}, ownGroup),
		// Post-import verification: crypto operations on the group's keys only.
		statement(verifyActions, []string{keys}, ownGroup),
		// Alias changes: the alias resources named in the file, and the group's keys.
		statement([]string{"kms:CreateAlias", "kms:UpdateAlias"}, aliases, nil),
		statement([]string{"kms:CreateAlias", "kms:UpdateAlias"}, []string{keys}, ownGroup),
		// ListAliases and ListKeys have no resource-level permission in KMS.
		statement([]string{"kms:ListAliases", "kms:ListKeys"}, []string{"*"}, nil),
	)
	for _, fn := range engineFunctions {
		for _, s := range sts {
			cp.Functions[fn].AddToRolePolicy(s)
		}
	}
	multiRegionPolicy(st, cp, filterMultiRegion(gs, true))
	if p.AssumeRoleArn != "" {
		for _, fn := range engineFunctions {
			cp.Functions[fn].AddToRolePolicy(statement([]string{"sts:AssumeRole"}, []string{p.AssumeRoleArn}, nil))
		}
	}
	// Alarms on the group's keys are reconciled by the engine after each switch
	// (key ARNs are born at run time), named keyferry-<group>-*.
	alarms := fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:keyferry-*", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())
	for _, fn := range engineFunctions {
		cp.Functions[fn].AddToRolePolicy(statement([]string{"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"}, []string{alarms}, nil))
	}
}

// newManagedPolicies creates the policy for the on-premises agent principal
// (execute-api:Invoke on this API's $connect route only: IAM has no
// execute-api:Connect action) and one for operators.
func newManagedPolicies(st awscdk.Stack, cp *ControlPlane, t store.Tables, gs []groups.Group) {
	connect := fmt.Sprintf("arn:%s:execute-api:%s:%s:%s/%s/$connect",
		*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), *cp.API.ApiId(), Stage)
	agent := awsiam.NewManagedPolicy(st, jsii.String("AgentPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyferry on-premises agent: may only open the agent websocket"),
		Statements:  &[]awsiam.PolicyStatement{statement([]string{"execute-api:Invoke"}, []string{connect}, nil)},
	})
	var tableArns []string
	for _, name := range []string{t.Jobs, t.Generations, t.Connections, t.Groups} {
		tbl := cp.Tables[name]
		tableArns = append(tableArns, *tbl.TableArn())
		if hasIndexes(t, name) {
			tableArns = append(tableArns, *tbl.TableArn()+"/index/*")
		}
	}
	operator := awsiam.NewManagedPolicy(st, jsii.String("OperatorPolicy"), &awsiam.ManagedPolicyProps{
		Description: jsii.String("keyferry operators: run the keyferry CLI (invoke operator/rotate, read jobs and keys)"),
		Statements: &[]awsiam.PolicyStatement{
			statement([]string{"lambda:InvokeFunction"}, []string{*cp.Functions[FnOperator].FunctionArn(), *cp.Functions[FnRotate].FunctionArn()}, nil),
			statement([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"}, tableArns, nil),
			// The keys of the stack's Region and the replicas of its
			// multi-Region groups in theirs (`keyferry keys` compares each).
			statement([]string{"kms:DescribeKey", "kms:ListKeyRotations", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "kms:GetPublicKey"},
				append([]string{keyARNs(*awscdk.Aws_REGION(), "*")}, replicaKeyARNs(gs)...),
				map[string]any{"Null": map[string]any{"aws:ResourceTag/" + groups.GroupTagKey: "false"}}),
			statement([]string{"kms:ListAliases", "kms:ListKeys"}, []string{"*"}, nil),
		},
	})
	awscdk.NewCfnOutput(st, jsii.String("AgentManagedPolicyArn"), &awscdk.CfnOutputProps{Value: agent.ManagedPolicyArn()})
	awscdk.NewCfnOutput(st, jsii.String("OperatorManagedPolicyArn"), &awscdk.CfnOutputProps{Value: operator.ManagedPolicyArn()})
}

// hasIndexes reports whether the store's schema gives table name any global
// secondary index (only then does a grant need its /index/* ARN).
func hasIndexes(t store.Tables, name string) bool {
	for _, in := range store.TableSchemas(t) {
		if *in.TableName == name {
			return len(in.GlobalSecondaryIndexes) > 0
		}
	}
	return false
}

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The group tag as a condition key: on an existing key, and in a request
// that tags a key (CreateKey, TagResource, ReplicateKey).
const (
	resTag = "aws:ResourceTag/" + groups.GroupTagKey
	reqTag = "aws:RequestTag/" + groups.GroupTagKey
)

// verifyActions are the crypto operations of the post-import verification.
var verifyActions = []string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateMac", "kms:Sign", "kms:Verify", "kms:GetPublicKey"}

// grantSet is what a set of groups needs in IAM conditions: their names,
// key specs, the wrapping algorithms and wrapping key specs they may use,
// the expiration models of their imports, and their aliases' ARNs in one
// Region.
type grantSet struct {
	names                        []string
	specs, algs, wks, expiration map[string]bool
	aliases                      []string
}

func collectGrants(gs []groups.Group, region string) grantSet {
	s := grantSet{specs: map[string]bool{}, algs: map[string]bool{}, wks: map[string]bool{}, expiration: map[string]bool{}}
	for _, g := range gs {
		s.names = append(s.names, g.Name)
		s.specs[string(g.KeySpec)] = true
		s.aliases = append(s.aliases, fmt.Sprintf("arn:%s:kms:%s:%s:%s", *awscdk.Aws_PARTITION(), region, *awscdk.Aws_ACCOUNT_ID(), g.Alias))
		for _, c := range keyspec.Legal(g.KeySpec) {
			if (g.Wrapping.Algorithm == "" || string(g.Wrapping.Algorithm) == groups.Auto || g.Wrapping.Algorithm == c.Algorithm) &&
				(g.Wrapping.KeySpec == "" || string(g.Wrapping.KeySpec) == groups.Auto || g.Wrapping.KeySpec == c.KeySpec) {
				s.algs[string(c.Algorithm)] = true
				s.wks[string(c.KeySpec)] = true
			}
		}
		if g.MaterialExpires() {
			s.expiration["KEY_MATERIAL_EXPIRES"] = true
		} else {
			s.expiration["KEY_MATERIAL_DOES_NOT_EXPIRE"] = true
		}
	}
	return s
}

func (s grantSet) wrappingConditions() map[string]any {
	return map[string]any{"StringEquals": map[string]any{
		"kms:WrappingAlgorithm": sorted(s.algs),
		"kms:WrappingKeySpec":   sorted(s.wks),
	}}
}

func (s grantSet) expirationConditions() map[string]any {
	return map[string]any{"StringEquals": map[string]any{"kms:ExpirationModel": sorted(s.expiration)}}
}

// keyARNs is the ARN pattern of the account's keys in region whose key id
// matches id ("*", or "mrk-*" for multi-Region keys).
func keyARNs(region, id string) string {
	return fmt.Sprintf("arn:%s:kms:%s:%s:key/%s", *awscdk.Aws_PARTITION(), region, *awscdk.Aws_ACCOUNT_ID(), id)
}

// createKeyStatement allows CreateKey of the set's keys: Origin EXTERNAL,
// their key specs, their group tag in the request, kms:MultiRegion mr and,
// when set, kms:MultiRegionKeyType (REPLICA: the CreateKey that
// ReplicateKey needs in the replica Region).
func createKeyStatement(set grantSet, mr bool, mrType string, tagged func(key string, names []string) map[string]any) awsiam.PolicyStatement {
	eq := map[string]any{"kms:KeyOrigin": "EXTERNAL", "kms:KeySpec": sorted(set.specs)}
	if mrType != "" {
		eq["kms:MultiRegionKeyType"] = mrType
	}
	return statement([]string{"kms:CreateKey"}, []string{"*"}, withConditions(map[string]any{
		"StringEquals": eq,
		"Bool":         map[string]any{"kms:MultiRegion": fmt.Sprint(mr)},
	}, tagged(reqTag, set.names)))
}

// withConditions merges condition blocks (operator by operator).
func withConditions(blocks ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range blocks {
		for op, kv := range m {
			have, _ := out[op].(map[string]any)
			if have == nil {
				have = map[string]any{}
				out[op] = have
			}
			for k, v := range kv.(map[string]any) {
				have[k] = v
			}
		}
	}
	return out
}

// filterMultiRegion returns the groups with replicas (mr) or without.
func filterMultiRegion(gs []groups.Group, mr bool) []groups.Group {
	var out []groups.Group
	for _, g := range gs {
		if g.MultiRegion() == mr {
			out = append(out, g)
		}
	}
	return out
}
