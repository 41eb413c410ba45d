package stack

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/shared/groups"
)

// nagMessages are the cdk-nag findings (error or warning annotations) on a stack.
func nagMessages(st awscdk.Stack) []string {
	var out []string
	ann := assertions.Annotations_FromStack(st)
	for _, find := range []func(*string, any) *[]*cxapi.SynthesisMessage{ann.FindError, ann.FindWarning} {
		for _, m := range *find(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("(AwsSolutions|PCI\\.DSS\\.321)-"))) {
			out = append(out, *m.Id+": "+strings.SplitN(fmt.Sprint(m.Entry.Data), "\n", 2)[0])
		}
	}
	return out
}

// TestStackPassesNagPacks: the stack as synthesized, with the app's checks,
// leaves no cdk-nag finding open (each is fixed or suppressed with a reason).
func TestStackPassesNagPacks(t *testing.T) {
	synth(t)
	if open := nagMessages(synthStack); len(open) > 0 {
		t.Fatalf("%d cdk-nag findings open:\n%s", len(open), strings.Join(open, "\n"))
	}
}

// TestSuppressionsAreNarrow: every suppression sits on one resource (none on
// the stack), carries a reason, and IAM5 ones name the wildcards they cover.
func TestSuppressionsAreNarrow(t *testing.T) {
	tpl, _ := synth(t)
	if md, ok := tpl["Metadata"].(map[string]any); ok && md["cdk_nag"] != nil {
		t.Fatalf("stack-level cdk-nag suppressions: %v", md["cdk_nag"])
	}
	n := 0
	for id, r := range tpl["Resources"].(map[string]any) {
		md, _ := r.(map[string]any)["Metadata"].(map[string]any)
		nag, _ := md["cdk_nag"].(map[string]any)
		rules, _ := nag["rules_to_suppress"].([]any)
		for _, x := range rules {
			s := x.(map[string]any)
			n++
			reason, _ := s["reason"].(string)
			if len(reason) < 40 {
				t.Errorf("%s: %v suppressed with a reason too short to explain it: %q", id, s["id"], reason)
			}
			if s["id"] == "AwsSolutions-IAM5" {
				if a, _ := s["applies_to"].([]any); len(a) == 0 {
					t.Errorf("%s: AwsSolutions-IAM5 suppressed for every wildcard (no applies_to)", id)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no suppressions in the template: the suppressions were not attached")
	}
	t.Logf("%d suppressions", n)
}

// TestNagReportsNonCompliantResources proves the checks bite on this stack:
// the real control plane plus a queue without SSL enforcement (SQS4) and a
// wildcard action on an engine role (IAM5 Action::, which no suppression
// covers) must be reported, so a blanket suppression would fail here.
func TestNagReportsNonCompliantResources(t *testing.T) {
	cfg, err := groups.Load(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	assets := t.TempDir()
	placeholderAssets(assets)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	tgt := cfg.Targets()[0]
	cp := NewControlPlane(app, "bad", &Props{
		StackProps: awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(tgt.Account), Region: jsii.String(tgt.Region)}},
		Config:     cfg, GroupsFile: sampleFile, Target: tgt, LambdaAssets: assets,
	})
	awssqs.NewQueue(cp.Stack, jsii.String("PlainQueue"), &awssqs.QueueProps{Encryption: awssqs.QueueEncryption_SQS_MANAGED})
	cp.Functions[FnRotate].AddToRolePolicy(statement([]string{"kms:Get*"}, []string{*cp.SigningKey.KeyArn()}, nil))
	ApplyChecks(app, false)

	open := strings.Join(nagMessages(cp.Stack), "\n")
	for _, want := range []string{
		"/bad/PlainQueue/Resource: AwsSolutions-SQS4",
		"/bad/PlainQueue/Resource: AwsSolutions-SQS3",
		"/bad/Fn-rotate/ServiceRole/DefaultPolicy/Resource: AwsSolutions-IAM5[Action::kms:Get*]",
	} {
		if !strings.Contains(open, want) {
			t.Errorf("cdk-nag did not report %q; it reported:\n%s", want, open)
		}
	}
	if strings.Contains(open, "TriggerDLQ") || strings.Contains(open, "Fn-worker") {
		t.Errorf("findings on the stack's own resources (they are fixed or suppressed):\n%s", open)
	}
}

// TestOverflowPoliciesKeepTheirRolesSuppressions: with many groups granted
// by name (GrantedByNameMax of them; the sandbox's seven already do it), an
// engine role's grants pass IAM's inline size and the CDK splits them into
// OverflowPolicyN managed policies at synthesis. Those carry the
// DefaultPolicy's statements and so need its reasons: before, the
// sandbox's template had 9 open AwsSolutions-IAM5 findings on them.
func TestOverflowPoliciesKeepTheirRolesSuppressions(t *testing.T) {
	app, cp, _ := fleetStack(t, GrantedByNameMax, nil)
	ApplyChecks(app, false)
	tpl := assertions.Template_FromStack(cp.Stack, nil)
	overflow := 0
	for id := range *tpl.FindResources(jsii.String("AWS::IAM::ManagedPolicy"), nil) {
		if strings.Contains(id, "OverflowPolicy") {
			overflow++
		}
	}
	if overflow == 0 {
		t.Fatalf("no OverflowPolicy with %d groups: the test no longer covers the split", GrantedByNameMax)
	}
	if open := nagMessages(cp.Stack); len(open) > 0 {
		t.Fatalf("%d cdk-nag findings open with %d overflow policies:\n%s", len(open), overflow, strings.Join(open, "\n"))
	}
	t.Logf("%d overflow policies, no finding open", overflow)
}
