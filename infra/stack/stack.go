// Package stack defines the keyferry control-plane stack: the WebSocket API
// the agents dial (IAM-authorised $connect), the Lambda functions, the
// DynamoDB tables, the control-plane signing key, the per-group schedules and
// alarm wiring, and the operations dashboard. One stack per target
// account-region of the key-groups file.
package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// Function names: one directory under functions/cmd and one Lambda each.
const (
	FnConnect      = "connect"
	FnDisconnect   = "disconnect"
	FnAgentMessage = "agent-message"
	FnRotate       = "rotate"
	FnKeepalive    = "keepalive"
	FnOperator     = "operator"
	// FnWorker runs the jobs handed on through the job queue.
	FnWorker = "worker"
	// FnSigningPubkey is the custom resource that outputs the signing public key.
	FnSigningPubkey = "signing-pubkey"
)

// Functions lists every Lambda of the control plane.
var Functions = []string{FnConnect, FnDisconnect, FnAgentMessage, FnRotate, FnKeepalive, FnOperator, FnWorker, FnSigningPubkey}

// engineFunctions run the rotation engine (it is driven by whichever function
// receives the next event), so they share the KMS import policy.
var engineFunctions = []string{FnAgentMessage, FnRotate, FnKeepalive, FnOperator, FnWorker}

// Stage is the WebSocket API stage name.
const Stage = "prod"

// GroupsFileName is the name of the key-groups file bundled next to every bootstrap.
const GroupsFileName = "key-groups.yaml"

// Props configures a control-plane stack.
type Props struct {
	awscdk.StackProps
	Config     *groups.Config
	GroupsFile string
	Target     groups.Target
	// LambdaAssets is the directory holding <function>/bootstrap (make build-lambdas).
	LambdaAssets string
	// AssumeRoleArn, when set, is a role in the target account the engine assumes.
	AssumeRoleArn string
}

// ControlPlane is the synthesised stack with handles tests and outputs use.
type ControlPlane struct {
	awscdk.Stack
	Functions  map[string]awslambda.Function
	Tables     map[string]awsdynamodb.TableV2
	API        awsapigatewayv2.WebSocketApi
	SigningKey awskms.Key
	DLQ        awssqs.Queue
	// SchedulerRole is every schedule's execution role.
	SchedulerRole awsiam.Role
	// groupScopes hold the per-group schedules and alarms (chunks.go).
	groupScopes []groupScope
	stage       awsapigatewayv2.WebSocketStage
	stageHTTPS  *string
	publicKey   *string
}

// NewControlPlane builds the stack.
func NewControlPlane(scope constructs.Construct, id string, p *Props) *ControlPlane {
	st := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	cp := &ControlPlane{Stack: st, Functions: map[string]awslambda.Function{}, Tables: map[string]awsdynamodb.TableV2{}}
	groupsInTarget := targetGroups(p.Config, p.Target)

	// DynamoDB tables from the store's own schema (one source of truth).
	names := store.TablesWithPrefix("keyferry-")
	for _, in := range store.TableSchemas(names) {
		cp.Tables[*in.TableName] = newTable(st, *in.TableName, in.KeySchema, in.AttributeDefinitions, in.GlobalSecondaryIndexes, ttlAttribute(names, *in.TableName))
	}

	// The control-plane signing key: wrap_requests are signed with it; the
	// agent pins its public key.
	cp.SigningKey = awskms.NewKey(st, jsii.String("ControlPlaneSigningKey"), &awskms.KeyProps{
		KeySpec:       awskms.KeySpec_ECC_NIST_P256,
		KeyUsage:      awskms.KeyUsage_SIGN_VERIFY,
		Description:   jsii.String("keyferry control plane: signs wrap_requests sent to on-premises agents"),
		Alias:         jsii.String(p.Config.ControlPlane.SigningKeyAlias),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	cp.DLQ = awssqs.NewQueue(st, jsii.String("TriggerDLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})

	stageGroupsFile(p)
	for _, name := range Functions {
		cp.Functions[name] = newFunction(st, name, p)
	}

	// The public key as an output: our own Go custom resource reads it with GetPublicKey.
	reader := cp.Functions[FnSigningPubkey]
	reader.AddToRolePolicy(statement([]string{"kms:GetPublicKey"}, []string{*cp.SigningKey.KeyArn()}, nil))
	pub := awscdk.NewCustomResource(st, jsii.String("ControlPlanePublicKeyReader"), &awscdk.CustomResourceProps{
		ServiceToken: reader.FunctionArn(),
		ResourceType: jsii.String("Custom::KeyferrySigningPublicKey"),
		Properties:   &map[string]any{"KeyId": cp.SigningKey.KeyArn()},
	})
	cp.publicKey = pub.GetAttString(jsii.String("PublicKey"))

	cp.API = newWebSocketAPI(st, cp)
	env := environment(cp, names, p)
	for _, fn := range cp.Functions {
		for k, v := range env {
			fn.AddEnvironment(jsii.String(k), v, nil)
		}
	}
	newJobQueue(st, cp)
	grantData(cp, names)
	grantEngine(st, cp, groupsInTarget, p)
	newManagedPolicies(st, cp, names, groupsInTarget)
	cp.SchedulerRole = newSchedulerRole(st)
	cp.groupScopes = groupScopes(st, groupsInTarget)
	newTriggers(st, cp)
	newOperations(st, cp, groupsInTarget)
	newOutputs(st, cp)
	suppressFindings(st, cp, names)
	return cp
}

func targetGroups(cfg *groups.Config, t groups.Target) []groups.Group {
	var out []groups.Group
	for _, g := range cfg.Groups {
		if g.Account == t.Account && g.Region == t.Region {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func ttlAttribute(t store.Tables, name string) string {
	switch name {
	case t.Triggers:
		return TTLAttribute
	case t.Pacing:
		return pacer.LedgerTTL
	}
	return ""
}

func newTable(st awscdk.Stack, name string, ks []types.KeySchemaElement, attrs []types.AttributeDefinition, gsis []types.GlobalSecondaryIndex, ttl string) awsdynamodb.TableV2 {
	typ := map[string]awsdynamodb.AttributeType{}
	for _, a := range attrs {
		t := awsdynamodb.AttributeType_STRING
		if a.AttributeType == types.ScalarAttributeTypeN {
			t = awsdynamodb.AttributeType_NUMBER
		} else if a.AttributeType == types.ScalarAttributeTypeB {
			t = awsdynamodb.AttributeType_BINARY
		}
		typ[*a.AttributeName] = t
	}
	attr := func(n string) *awsdynamodb.Attribute {
		return &awsdynamodb.Attribute{Name: jsii.String(n), Type: typ[n]}
	}
	hashRange := func(ks []types.KeySchemaElement) (pk, sk *awsdynamodb.Attribute) {
		for _, k := range ks {
			if k.KeyType == types.KeyTypeHash {
				pk = attr(*k.AttributeName)
			} else {
				sk = attr(*k.AttributeName)
			}
		}
		return pk, sk
	}
	pk, sk := hashRange(ks)
	props := &awsdynamodb.TablePropsV2{
		TableName:          jsii.String(name),
		PartitionKey:       pk,
		SortKey:            sk,
		Billing:            awsdynamodb.Billing_OnDemand(nil),
		Encryption:         awsdynamodb.TableEncryptionV2_AwsManagedKey(),
		DeletionProtection: jsii.Bool(true),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	}
	if ttl != "" {
		props.TimeToLiveAttribute = jsii.String(ttl)
	}
	var idx []*awsdynamodb.GlobalSecondaryIndexPropsV2
	for _, g := range gsis {
		gpk, gsk := hashRange(g.KeySchema)
		idx = append(idx, &awsdynamodb.GlobalSecondaryIndexPropsV2{IndexName: g.IndexName, PartitionKey: gpk, SortKey: gsk})
	}
	if len(idx) > 0 {
		props.GlobalSecondaryIndexes = &idx
	}
	return awsdynamodb.NewTableV2(st, jsii.String("Table-"+name), props)
}

// stageGroupsFile copies the validated key-groups file into every function's
// asset directory so config and code deploy together.
func stageGroupsFile(p *Props) {
	data, err := os.ReadFile(p.GroupsFile)
	if err != nil {
		panic(fmt.Sprintf("keyferry: read %s: %v", p.GroupsFile, err))
	}
	for _, name := range Functions {
		dir := filepath.Join(p.LambdaAssets, name)
		if _, err := os.Stat(filepath.Join(dir, "bootstrap")); err != nil {
			panic(fmt.Sprintf("keyferry: %s/bootstrap missing: run `make build` before synth (%v)", dir, err))
		}
		if err := os.WriteFile(filepath.Join(dir, GroupsFileName), data, 0o644); err != nil {
			panic(fmt.Sprintf("keyferry: stage groups file: %v", err))
		}
		for _, g := range p.Config.Groups {
			if g.PolicyPath == "" {
				continue
			}
			pol, err := os.ReadFile(g.PolicyPath)
			if err != nil {
				panic(fmt.Sprintf("keyferry: read policy %s: %v", g.PolicyPath, err))
			}
			rel, err := filepath.Rel(filepath.Dir(p.GroupsFile), g.PolicyPath)
			if err != nil || rel == ".." || filepath.IsAbs(rel) || len(rel) > 2 && rel[:3] == "../" {
				panic(fmt.Sprintf("keyferry: policy file %s must live under the groups file's folder", g.PolicyPath))
			}
			dst := filepath.Join(dir, rel)
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, pol, 0o644); err != nil {
				panic(fmt.Sprintf("keyferry: stage policy: %v", err))
			}
		}
	}
}

func newFunction(st awscdk.Stack, name string, p *Props) awslambda.Function {
	timeout := 30.0
	switch name {
	case FnRotate, FnKeepalive, FnOperator:
		timeout = 120
	case FnWorker:
		timeout = workerTimeout
	}
	logs := awslogs.NewLogGroup(st, jsii.String("Logs-"+name), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_YEAR,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	return awslambda.NewFunction(st, jsii.String("Fn-"+name), &awslambda.FunctionProps{
		FunctionName:  jsii.String("keyferry-" + name),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  awslambda.Architecture_ARM_64(),
		Handler:       jsii.String("bootstrap"),
		Code:          awslambda.Code_FromAsset(jsii.String(filepath.Join(p.LambdaAssets, name)), nil),
		MemorySize:    jsii.Number(256),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(timeout)),
		LoggingFormat: awslambda.LoggingFormat_JSON,
		LogGroup:      logs,
		Tracing:       awslambda.Tracing_ACTIVE,
		Description:   jsii.String("keyferry " + name),
	})
}

func newWebSocketAPI(st awscdk.Stack, cp *ControlPlane) awsapigatewayv2.WebSocketApi {
	integ := func(id, fn string) awsapigatewayv2.WebSocketRouteIntegration {
		return awsapigatewayv2integrations.NewWebSocketLambdaIntegration(jsii.String(id), cp.Functions[fn], nil)
	}
	api := awsapigatewayv2.NewWebSocketApi(st, jsii.String("AgentAPI"), &awsapigatewayv2.WebSocketApiProps{
		ApiName:                  jsii.String("keyferry-agents"),
		Description:              jsii.String("keyferry: on-premises agents dial out to this API (IAM-authorised $connect)"),
		RouteSelectionExpression: jsii.String("$request.body.action"),
		ConnectRouteOptions: &awsapigatewayv2.WebSocketRouteOptions{
			Integration: integ("ConnectIntegration", FnConnect),
			Authorizer:  awsapigatewayv2authorizers.NewWebSocketIamAuthorizer(),
		},
		DisconnectRouteOptions: &awsapigatewayv2.WebSocketRouteOptions{Integration: integ("DisconnectIntegration", FnDisconnect)},
		DefaultRouteOptions:    &awsapigatewayv2.WebSocketRouteOptions{Integration: integ("DefaultRouteIntegration", FnAgentMessage)},
	})
	for _, action := range AgentActions {
		api.AddRoute(jsii.String(action), &awsapigatewayv2.WebSocketRouteOptions{Integration: integ("Route-"+action, FnAgentMessage)})
	}
	accessLogs := awslogs.NewLogGroup(st, jsii.String("AgentAPIAccessLogs"), &awslogs.LogGroupProps{
		Retention:     awslogs.RetentionDays_ONE_YEAR,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	stage := awsapigatewayv2.NewWebSocketStage(st, jsii.String("AgentAPIStage"), &awsapigatewayv2.WebSocketStageProps{
		WebSocketApi: api,
		StageName:    jsii.String(Stage),
		AutoDeploy:   jsii.Bool(true),
		Throttle:     &awsapigatewayv2.ThrottleSettings{RateLimit: jsii.Number(50), BurstLimit: jsii.Number(100)},
	})
	cfn := stage.Node().DefaultChild().(awsapigatewayv2.CfnStage)
	// A property of the resource (not an override) so that checks reading the
	// resource, such as cdk-nag's AwsSolutions-APIG1, see it.
	cfn.SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: accessLogs.LogGroupArn(),
		Format: jsii.String(`{"requestId":"$context.requestId","connectionId":"$context.connectionId","routeKey":"$context.routeKey",` +
			`"eventType":"$context.eventType","status":"$context.status","caller":"$context.identity.caller",` +
			`"userArn":"$context.identity.userArn","sourceIp":"$context.identity.sourceIp","error":"$context.error.message",` +
			`"integrationError":"$context.integration.error","requestTime":"$context.requestTimeEpoch"}`),
	})
	cfn.AddPropertyOverride(jsii.String("DefaultRouteSettings.LoggingLevel"), "ERROR")
	cfn.AddPropertyOverride(jsii.String("DefaultRouteSettings.DataTraceEnabled"), false)
	stageURL := fmt.Sprintf("https://%s.execute-api.%s.%s/%s", "${ApiId}", "${AWS::Region}", "${AWS::URLSuffix}", Stage)
	cp.stageHTTPS = awscdk.Fn_Sub(jsii.String(stageURL), &map[string]*string{"ApiId": api.ApiId()})
	cp.stage = stage
	return api
}

// TTLAttribute is the store's expiry attribute (epoch seconds) on records that expire.
const TTLAttribute = "expires_at"

// AgentActions are the routes agents send on (route selection $request.body.action).
var AgentActions = []string{"hello", "wrap_result", "error", "heartbeat"}
