package stack

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

const sampleFile = "../../examples/key-groups.yaml"

var (
	synthOnce  sync.Once
	synthStack awscdk.Stack
	template   map[string]any
	sample     *groups.Config
	synthErr   error
)

// synth builds the stack for the sample key-groups file once per test run
// (jsii start-up is the slow part) and returns the CloudFormation template.
func synth(t *testing.T) (map[string]any, *groups.Config) {
	t.Helper()
	synthOnce.Do(func() {
		cfg, err := groups.Load(sampleFile)
		if err != nil {
			synthErr = err
			return
		}
		sample = cfg
		assets, err := os.MkdirTemp("", "keyferry-assets")
		if err != nil {
			synthErr = err
			return
		}
		placeholderAssets(assets)
		app := awscdk.NewApp(nil)
		tgt := cfg.Targets()[0]
		cp := NewControlPlane(app, "test", &Props{
			StackProps:   awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(tgt.Account), Region: jsii.String(tgt.Region)}},
			Config:       cfg,
			GroupsFile:   sampleFile,
			Target:       tgt,
			LambdaAssets: assets,
		})
		ApplyChecks(app, false) // as infra/main.go does: nag_test.go reads the findings
		synthStack = cp.Stack
		raw := assertions.Template_FromStack(cp.Stack, nil).ToJSON()
		b, _ := json.Marshal(raw)
		synthErr = json.Unmarshal(b, &template)
	})
	if synthErr != nil {
		t.Fatal(synthErr)
	}
	return template, sample
}

// placeholderAssets writes a stand-in bootstrap per function under dir.
func placeholderAssets(dir string) {
	for _, fn := range Functions {
		os.MkdirAll(filepath.Join(dir, fn), 0o755)
		os.WriteFile(filepath.Join(dir, fn, "bootstrap"), []byte("placeholder"), 0o755)
	}
}

func resources(t *testing.T, typ string) map[string]map[string]any {
	tpl, _ := synth(t)
	out := map[string]map[string]any{}
	for id, r := range tpl["Resources"].(map[string]any) {
		rm := r.(map[string]any)
		if rm["Type"] == typ {
			props, _ := rm["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

func TestConnectRouteUsesIAMAuthorizer(t *testing.T) {
	found := false
	for _, r := range resources(t, "AWS::ApiGatewayV2::Route") {
		if r["RouteKey"] == "$connect" {
			found = true
			if r["AuthorizationType"] != "AWS_IAM" {
				t.Fatalf("$connect authorization = %v, want AWS_IAM", r["AuthorizationType"])
			}
		} else if r["AuthorizationType"] != nil && r["AuthorizationType"] != "NONE" {
			t.Fatalf("route %v has authorization %v (only $connect authorises)", r["RouteKey"], r["AuthorizationType"])
		}
	}
	if !found {
		t.Fatal("no $connect route")
	}
	apis := resources(t, "AWS::ApiGatewayV2::Api")
	for _, a := range apis {
		if a["ProtocolType"] != "WEBSOCKET" || a["RouteSelectionExpression"] != "$request.body.action" {
			t.Fatalf("api %v", a)
		}
	}
	keys := map[string]bool{}
	for _, r := range resources(t, "AWS::ApiGatewayV2::Route") {
		keys[r["RouteKey"].(string)] = true
	}
	for _, k := range append([]string{"$connect", "$disconnect", "$default"}, AgentActions...) {
		if !keys[k] {
			t.Errorf("route %s missing", k)
		}
	}
	for _, s := range resources(t, "AWS::ApiGatewayV2::Stage") {
		if s["AccessLogSettings"] == nil || s["DefaultRouteSettings"] == nil {
			t.Fatalf("stage without access logging or throttling: %v", s)
		}
	}
}

func TestEveryLambdaIsArm64ProvidedAL2023(t *testing.T) {
	fns := resources(t, "AWS::Lambda::Function")
	if len(fns) != len(Functions) {
		t.Fatalf("%d functions in the template, want %d (%v)", len(fns), len(Functions), Functions)
	}
	roles := map[string]bool{}
	for id, f := range fns {
		if f["Runtime"] != "provided.al2023" || f["Handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v handler %v", id, f["Runtime"], f["Handler"])
		}
		archs, _ := f["Architectures"].([]any)
		if len(archs) != 1 || archs[0] != "arm64" {
			t.Errorf("%s: architectures %v", id, archs)
		}
		b, _ := json.Marshal(f["Role"])
		roles[string(b)] = true
	}
	if len(roles) != len(fns) {
		t.Fatalf("%d roles for %d functions: each function needs its own role", len(roles), len(fns))
	}
}

func TestOneSchedulePerGroup(t *testing.T) {
	_, cfg := synth(t)
	perGroup := map[string]int{}
	for id, s := range resources(t, "AWS::Scheduler::Schedule") {
		tgt := s["Target"].(map[string]any)
		var in map[string]any
		if err := json.Unmarshal([]byte(tgt["Input"].(string)), &in); err != nil {
			t.Fatalf("%s: input %v", id, tgt["Input"])
		}
		if tgt["DeadLetterConfig"] == nil || tgt["RetryPolicy"] == nil {
			t.Errorf("%s: no retry policy or dead-letter queue", id)
		}
		if g, ok := in["group"].(string); ok {
			if in["trigger"] != "schedule" {
				t.Errorf("%s: input %v", id, in)
			}
			perGroup[g]++
			gr, _ := cfg.Group(g)
			if s["ScheduleExpression"] != gr.Schedule {
				t.Errorf("%s: expression %v, want %v", g, s["ScheduleExpression"], gr.Schedule)
			}
		}
	}
	for _, g := range cfg.Groups {
		if perGroup[g.Name] != 1 {
			t.Errorf("group %s has %d schedules, want 1", g.Name, perGroup[g.Name])
		}
	}
	if len(perGroup) != len(cfg.Groups) {
		t.Fatalf("schedules for %d groups, file has %d", len(perGroup), len(cfg.Groups))
	}
}

func rotateFunctionID(t *testing.T) string {
	for id, f := range resources(t, "AWS::Lambda::Function") {
		if f["FunctionName"] == "keyferry-"+FnRotate {
			return id
		}
	}
	t.Fatal("no rotate function")
	return ""
}

func TestAlarmsWiredToRotateFunction(t *testing.T) {
	rot := rotateFunctionID(t)
	direct := false
	for _, p := range resources(t, "AWS::Lambda::Permission") {
		b, _ := json.Marshal(p["FunctionName"])
		if p["Principal"] == "lambda.alarms.cloudwatch.amazonaws.com" && strings.Contains(string(b), rot) {
			direct = true
			sa, _ := json.Marshal(p["SourceArn"])
			if !strings.Contains(string(sa), ":alarm:"+AlarmPrefix) {
				t.Fatalf("alarm permission not scoped to keyferry alarms: %s", sa)
			}
		}
	}
	if !direct {
		t.Fatal("CloudWatch alarms cannot invoke the rotate function directly")
	}
	viaRule := false
	for _, r := range resources(t, "AWS::Events::Rule") {
		pat, _ := json.Marshal(r["EventPattern"])
		tg, _ := json.Marshal(r["Targets"])
		if strings.Contains(string(pat), "CloudWatch Alarm State Change") && strings.Contains(string(tg), rot) {
			viaRule = true
		}
	}
	if !viaRule {
		t.Fatal("no EventBridge rule for CloudWatch Alarm State Change targeting the rotate function")
	}
}

func TestTablesHavePITRAndProtection(t *testing.T) {
	tables := resources(t, "AWS::DynamoDB::GlobalTable")
	if want := len(store.TableSchemas(store.TablesWithPrefix("keyferry-"))); len(tables) != want {
		t.Fatalf("%d tables, want %d (store.TableSchemas)", len(tables), want)
	}
	for id, tb := range tables {
		if tb["BillingMode"] != "PAY_PER_REQUEST" {
			t.Errorf("%s: billing %v", id, tb["BillingMode"])
		}
		if tb["SSESpecification"] == nil {
			t.Errorf("%s: not encrypted", id)
		}
		for _, r := range tb["Replicas"].([]any) {
			rm := r.(map[string]any)
			pitr, _ := rm["PointInTimeRecoverySpecification"].(map[string]any)
			if pitr["PointInTimeRecoveryEnabled"] != true {
				t.Errorf("%s: no PITR: %v", id, rm)
			}
			if rm["DeletionProtectionEnabled"] != true {
				t.Errorf("%s: no deletion protection", id)
			}
		}
	}
}

// statements returns every IAM statement in the template (inline and managed policies).
func statements(t *testing.T) []map[string]any {
	var out []map[string]any
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, p := range resources(t, typ) {
			doc := p["PolicyDocument"].(map[string]any)
			for _, s := range doc["Statement"].([]any) {
				out = append(out, s.(map[string]any))
			}
		}
	}
	return out
}

func actionsOf(s map[string]any) []string {
	switch a := s["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func TestNoWildcardKMSOrActionGrants(t *testing.T) {
	sts := statements(t)
	if len(sts) == 0 {
		t.Fatal("no IAM statements found")
	}
	for _, s := range sts {
		for _, a := range actionsOf(s) {
			if a == "*" || a == "kms:*" || strings.HasSuffix(a, ":*") {
				t.Errorf("statement grants %q: %v", a, s)
			}
		}
		if s["Resource"] == "*" {
			for _, a := range actionsOf(s) {
				switch a {
				case "kms:CreateKey":
					if s["Condition"] == nil {
						t.Errorf("kms:CreateKey on * without conditions")
					}
				case "kms:ListAliases", "kms:ListKeys", "xray:PutTraceSegments", "xray:PutTelemetryRecords": // no resource-level permission
				default:
					t.Errorf("%s granted on Resource * although a narrower resource exists", a)
				}
			}
		}
	}
}

func TestImportActionsCarryConditionKeys(t *testing.T) {
	want := map[string][]string{
		"kms:GetParametersForImport": {"kms:WrappingAlgorithm", "kms:WrappingKeySpec", "aws:ResourceTag/" + groups.GroupTagKey},
		"kms:ImportKeyMaterial":      {"kms:ExpirationModel", "aws:ResourceTag/" + groups.GroupTagKey},
		"kms:CreateKey":              {"kms:KeyOrigin", "aws:RequestTag/" + groups.GroupTagKey},
	}
	seen := map[string]int{}
	for _, s := range statements(t) {
		for _, a := range actionsOf(s) {
			keys, ok := want[a]
			if !ok {
				continue
			}
			seen[a]++
			cond, _ := json.Marshal(s["Condition"])
			for _, k := range keys {
				if !strings.Contains(string(cond), `"`+k+`"`) {
					t.Errorf("%s statement lacks condition key %s: %s", a, k, cond)
				}
			}
		}
	}
	for a := range want {
		if seen[a] == 0 {
			t.Errorf("no statement grants %s", a)
		}
	}
}

func TestOutputsPresent(t *testing.T) {
	tpl, _ := synth(t)
	outs := tpl["Outputs"].(map[string]any)
	for _, o := range []string{"WebSocketURL", "ControlPlanePublicKey", "ControlPlaneSigningKeyArn", "AgentManagedPolicyArn", "OperatorManagedPolicyArn"} {
		if outs[o] == nil {
			t.Errorf("output %s missing", o)
		}
	}
	keys := resources(t, "AWS::KMS::Key")
	if len(keys) != 1 {
		t.Fatalf("%d KMS keys, want the signing key only", len(keys))
	}
	for _, k := range keys {
		if k["KeySpec"] != "ECC_NIST_P256" || k["KeyUsage"] != "SIGN_VERIFY" {
			t.Fatalf("signing key %v", k)
		}
	}
}

// TestFleetCreatedTogetherDoesNotFireTogether: 120 groups deployed together
// with one schedule expression. Scheduler fires a schedule with a flexible
// time window at a random time within the window after it falls due (and
// one with the window OFF exactly at its due time), so the template's
// windows decide how many rotations start in the busiest minute. With the
// default window no minute holds more than a small share of the fleet;
// with windows off (the template before this test) all 120 start in the
// same minute and queue on the 1/s GetParametersForImport quota. (120: each
// group adds a schedule and two alarms to the stack, and CloudFormation
// refuses a stack of more than 500 resources.)
func TestFleetCreatedTogetherDoesNotFireTogether(t *testing.T) {
	const fleet = 120
	_, cp, _ := fleetStack(t, fleet, func(g *groups.Group) {
		g.Schedule = "cron(0 3 1 * ? *)"
		g.ScheduleWindow = "" // the default
	})
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				FlexibleTimeWindow struct {
					Mode                   string
					MaximumWindowInMinutes float64
				}
				Target struct{ Input string }
			}
		}
	}
	b, _ := json.Marshal(assertions.Template_FromStack(cp.Stack, nil).ToJSON())
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	perMinute := map[int]int{}
	n := 0
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Scheduler::Schedule" || !strings.Contains(r.Properties.Target.Input, `"schedule"`) {
			continue
		}
		n++
		w := r.Properties.FlexibleTimeWindow
		offset := 0.0 // minutes after the due time
		switch w.Mode {
		case "OFF":
		case "FLEXIBLE":
			if w.MaximumWindowInMinutes < 15 {
				t.Errorf("%s: window %v min", id, w.MaximumWindowInMinutes)
			}
			offset = rng.Float64() * w.MaximumWindowInMinutes
		default:
			t.Fatalf("%s: FlexibleTimeWindow mode %q", id, w.Mode)
		}
		perMinute[int(offset)]++
	}
	if n != fleet {
		t.Fatalf("%d group schedules, want %d", n, fleet)
	}
	busiest := 0
	for _, c := range perMinute {
		busiest = max(busiest, c)
	}
	if limit := fleet / 10; busiest > limit {
		t.Fatalf("%d of %d rotations start in the busiest minute, want at most %d (10%%): schedules created together fire together", busiest, fleet, limit)
	}
	t.Logf("%d schedules over %d minutes, busiest minute %d", n, len(perMinute), busiest)
}
