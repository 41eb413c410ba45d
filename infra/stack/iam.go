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
	rw(FnDisconnect, t.Connections)
	for _, fn := range engineFunctions {
		rw(fn, t.Jobs, t.Generations, t.Connections, t.Triggers, t.Groups, t.Pacing)
	}
	// Functions that talk to agents post through @connections.
	manage := fmt.Sprintf("arn:%s:execute-api:%s:%s:%s/%s/POST/@connections/*",
		*awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), *cp.API.ApiId(), Stage)
	for _, fn := range engineFunctions {
		cp.Functions[fn].AddToRolePolicy(statement([]string{"execute-api:ManageConnections"}, []string{manage}, nil))
	}
	// The signing key: kms:Sign for functions that send wrap_requests, GetPublicKey for all engine functions.
	for _, fn := range engineFunctions {
		cp.Functions[fn].AddToRolePolicy(statement([]string{"kms:Sign", "kms:GetPublicKey"}, []string{*cp.SigningKey.KeyArn()},
			map[string]any{"StringEquals": map[string]any{"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"}}))
	}
}

// grantEngine writes the KMS import permissions with condition keys: no
// kms:*, no Resource * where a narrower resource or condition exists.
func grantEngine(st awscdk.Stack, cp *ControlPlane, gs []groups.Group, p *Props) {
	names := make([]string, 0, len(gs))
	specs := map[string]bool{}
	aliases := []string{}
	algs := map[string]bool{}
	wks := map[string]bool{}
	expiration := map[string]bool{}
	for _, g := range gs {
		names = append(names, g.Name)
		specs[string(g.KeySpec)] = true
		aliases = append(aliases, fmt.Sprintf("arn:%s:kms:%s:%s:%s", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID(), g.Alias))
		for _, c := range keyspec.Legal(g.KeySpec) {
			if (g.Wrapping.Algorithm == "" || string(g.Wrapping.Algorithm) == groups.Auto || g.Wrapping.Algorithm == c.Algorithm) &&
				(g.Wrapping.KeySpec == "" || string(g.Wrapping.KeySpec) == groups.Auto || g.Wrapping.KeySpec == c.KeySpec) {
				algs[string(c.Algorithm)] = true
				wks[string(c.KeySpec)] = true
			}
		}
		if g.MaterialExpires() {
			expiration["KEY_MATERIAL_EXPIRES"] = true
		} else {
			expiration["KEY_MATERIAL_DOES_NOT_EXPIRE"] = true
		}
	}
	if len(names) == 0 {
		return
	}
	keys := fmt.Sprintf("arn:%s:kms:%s:%s:key/*", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())
	ownGroup := map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + groups.GroupTagKey: names}}
	sts := []awsiam.PolicyStatement{
		// CreateKey has no resource ARN yet: restrict by origin, spec and the group tag in the request.
		statement([]string{"kms:CreateKey"}, []string{"*"}, map[string]any{
			"StringEquals": map[string]any{
				"kms:KeyOrigin":                        "EXTERNAL",
				"kms:KeySpec":                          sorted(specs),
				"aws:RequestTag/" + groups.GroupTagKey: names,
			},
			"Bool": map[string]any{"kms:MultiRegion": "false"},
		}),
		statement([]string{"kms:TagResource"}, []string{keys}, map[string]any{
			"StringEquals": map[string]any{"aws:RequestTag/" + groups.GroupTagKey: names},
		}),
		statement([]string{"kms:GetParametersForImport"}, []string{keys}, map[string]any{
			"StringEquals": map[string]any{
				"kms:WrappingAlgorithm":                 sorted(algs),
				"kms:WrappingKeySpec":                   sorted(wks),
				"aws:ResourceTag/" + groups.GroupTagKey: names,
			},
		}),
		statement([]string{"kms:ImportKeyMaterial"}, []string{keys}, map[string]any{
			"StringEquals": map[string]any{
				"kms:ExpirationModel":                   sorted(expiration),
				"aws:ResourceTag/" + groups.GroupTagKey: names,
			},
		}),
		statement([]string{
			"kms:DescribeKey", "kms:DeleteImportedKeyMaterial", "kms:RotateKeyOnDemand", "kms:GetKeyRotationStatus",
			"kms:ListKeyRotations", "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy",
			"kms:GetKeyPolicy", "kms:ListResourceTags",
		}, []string{keys}, ownGroup),
		// Post-import verification: crypto operations on the group's keys only.
		statement([]string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateMac", "kms:Sign", "kms:Verify", "kms:GetPublicKey"},
			[]string{keys}, ownGroup),
		// Alias changes: the alias resources named in the file, and the group's keys.
		statement([]string{"kms:CreateAlias", "kms:UpdateAlias"}, aliases, nil),
		statement([]string{"kms:CreateAlias", "kms:UpdateAlias"}, []string{keys}, ownGroup),
		// ListAliases and ListKeys have no resource-level permission in KMS.
		statement([]string{"kms:ListAliases"}, []string{"*"}, nil),
	}
	for _, fn := range engineFunctions {
		for _, s := range sts {
			cp.Functions[fn].AddToRolePolicy(s)
		}
	}
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
func newManagedPolicies(st awscdk.Stack, cp *ControlPlane, t store.Tables) {
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
			statement([]string{"kms:DescribeKey", "kms:ListKeyRotations", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "kms:GetPublicKey"},
				[]string{fmt.Sprintf("arn:%s:kms:%s:%s:key/*", *awscdk.Aws_PARTITION(), *awscdk.Aws_REGION(), *awscdk.Aws_ACCOUNT_ID())},
				map[string]any{"Null": map[string]any{"aws:ResourceTag/" + groups.GroupTagKey: "false"}}),
			statement([]string{"kms:ListAliases"}, []string{"*"}, nil),
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
