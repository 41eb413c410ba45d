package stack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/shared/groups"
)

// TestFleetFitsCloudFormationsResourceLimit: a 1000-group account-region
// synthesizes (CDK refuses a stack over 500 resources, as CloudFormation
// would) as the control plane's stack plus nested stacks of at most
// GroupsPerStack groups, each under the limit, with exactly one schedule
// per group, every schedule invoking as the one SchedulerRole, and the
// per-group alarms beside their schedules.
func TestFleetFitsCloudFormationsResourceLimit(t *testing.T) {
	const fleet = 1000
	app, cp, cfg := fleetStack(t, fleet, nil)
	ApplyChecks(app, false)
	type res struct {
		Type       string
		Properties map[string]any
	}
	load := func(st awscdk.Stack) map[string]res {
		var tpl struct{ Resources map[string]res }
		b, _ := json.Marshal(assertions.Template_FromStack(st, nil).ToJSON())
		if err := json.Unmarshal(b, &tpl); err != nil {
			t.Fatal(err)
		}
		return tpl.Resources
	}
	root := load(cp.Stack)
	if open := nagMessages(cp.Stack); len(open) > 0 {
		t.Errorf("%d cdk-nag findings open on the fleet's stack:\n%s", len(open), strings.Join(open, "\n"))
	}
	if n := len(root); n > 500 {
		t.Fatalf("the control plane's stack has %d resources (CloudFormation's limit is 500)", n)
	}
	nested := 0
	for _, r := range root {
		if r.Type == "AWS::CloudFormation::Stack" {
			nested++
		}
	}
	if want := (fleet + GroupsPerStack - 1) / GroupsPerStack; nested != want || len(cp.groupScopes) != want {
		t.Fatalf("%d nested stacks (%d scopes), want %d", nested, len(cp.groupScopes), want)
	}
	schedules := map[string]int{}
	alarms := 0
	for _, sc := range cp.groupScopes {
		rs := load(sc.stack)
		if open := constructNagMessages(sc.stack); len(open) > 0 {
			t.Errorf("%d cdk-nag findings open on %s:\n%s", len(open), *sc.stack.Node().Id(), strings.Join(open, "\n"))
		}
		if len(rs) > 500 {
			t.Errorf("nested stack %s: %d resources", *sc.stack.Node().Id(), len(rs))
		}
		for id, r := range rs {
			switch r.Type {
			case "AWS::Scheduler::Schedule":
				tg := r.Properties["Target"].(map[string]any)
				var in struct{ Group string }
				json.Unmarshal([]byte(tg["Input"].(string)), &in)
				schedules[in.Group]++
				if b, _ := json.Marshal(tg["RoleArn"]); !strings.Contains(string(b), "SchedulerRole") {
					t.Errorf("%s invokes as %s, want the one SchedulerRole", id, b)
				}
			case "AWS::CloudWatch::Alarm":
				alarms++
			case "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
				t.Errorf("nested stack holds %s %s: grants belong to the control plane's stack", r.Type, id)
			}
		}
	}
	for _, g := range cfg.Groups {
		if schedules[g.Name] != 1 {
			t.Fatalf("group %s has %d schedules, want 1", g.Name, schedules[g.Name])
		}
	}
	if alarms < fleet {
		t.Errorf("%d per-group alarms for %d groups", alarms, fleet)
	}
	for id, r := range root {
		if r.Type == "AWS::IAM::ManagedPolicy" && !strings.HasPrefix(id, "AgentPolicy") && !strings.HasPrefix(id, "OperatorPolicy") {
			t.Errorf("overflow policy %s: the fleet's grants should collapse into the SchedulerRole's one policy", id)
		}
	}
}

// constructNagMessages are the cdk-nag findings recorded on the constructs
// under scope (a nested stack, which assertions cannot load as a stack):
// error and warning metadata entries naming a rule of the packs. The app
// must have been synthesized (the aspects run then).
func constructNagMessages(scope constructs.IConstruct) []string {
	var out []string
	for _, c := range *scope.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		for _, m := range *c.Node().Metadata() {
			if *m.Type != "aws:cdk:error" && *m.Type != "aws:cdk:warning" {
				continue
			}
			if s := fmt.Sprint(m.Data); strings.Contains(s, "AwsSolutions-") || strings.Contains(s, "PCI.DSS.321-") {
				out = append(out, *c.Node().Path()+": "+strings.SplitN(s, "\n", 2)[0])
			}
		}
	}
	return out
}

// fleetStack builds the control plane for n copies of the sample's first
// group (fleet-0000 ...), each changed by edit when set.
func fleetStack(t *testing.T, n int, edit func(*groups.Group)) (awscdk.App, *ControlPlane, *groups.Config) {
	t.Helper()
	cfg, err := groups.Load(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	base := cfg.Groups[0]
	cfg.Groups = nil
	for i := range n {
		g := base
		g.Name = fmt.Sprintf("fleet-%04d", i)
		g.Alias = "alias/" + g.Name
		if edit != nil {
			edit(&g)
		}
		cfg.Groups = append(cfg.Groups, g)
	}
	assets := t.TempDir()
	placeholderAssets(assets)
	app := awscdk.NewApp(nil)
	tgt := cfg.Targets()[0]
	cp := NewControlPlane(app, "fleet", &Props{
		StackProps: awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(tgt.Account), Region: jsii.String(tgt.Region)}},
		Config:     cfg, GroupsFile: sampleFile, Target: tgt, LambdaAssets: assets,
	})
	return app, cp, cfg
}
