package sandbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// dropAction removes action from every statement of every role policy of
// the template (as if the stack had been written without it).
func dropAction(action string) func(*cfntemplate.Template) error {
	return func(t *cfntemplate.Template) error {
		for _, r := range t.OfType(cfntemplate.TypePolicy) {
			doc, _ := r.Properties["PolicyDocument"].(map[string]any)
			for _, st := range doc["Statement"].([]any) {
				m := st.(map[string]any)
				switch a := m["Action"].(type) {
				case string:
					if a == action {
						m["Action"] = []any{}
					}
				case []any:
					var keep []any
					for _, x := range a {
						if x != action {
							keep = append(keep, x)
						}
					}
					m["Action"] = keep
				}
			}
		}
		return nil
	}
}

// TestIAMDeniesAnActionTheTemplateDropped breaks one policy of the
// synthesized template on purpose (no role may kms:ImportKeyMaterial): the
// KMS gate answers AccessDeniedException, and the job fails with a reason
// naming the action. With lambda:InvokeFunction gone from the Scheduler's
// roles too, a schedule's invocation is refused and dead-lettered.
func TestIAMDeniesAnActionTheTemplateDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	edit := func(t *cfntemplate.Template) error {
		if err := dropAction("kms:ImportKeyMaterial")(t); err != nil {
			return err
		}
		return dropAction("lambda:InvokeFunction")(t)
	}
	sb, err := Start(ctx, Options{Functions: FunctionsRIE, PolicyEdit: edit})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	g := sb.Groups.Groups[0]
	res, err := sb.Trigger(ctx, g.Name, "schedule", "iam-broken")
	if err != nil {
		t.Fatal(err)
	}
	j, err := sb.WaitJob(ctx, res.JobID, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(j.State) != "FAILED" || !strings.Contains(j.Reason, "AccessDeniedException") || !strings.Contains(j.Reason, "kms:ImportKeyMaterial") {
		t.Errorf("job %s %s: %q; want FAILED naming AccessDeniedException and kms:ImportKeyMaterial", j.ID, j.State, j.Reason)
	}
	trig, err := sb.StartTriggers(ctx, sb.Template, TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := trig.Scheduler.Schedules[0]
	ex, err := trig.Scheduler.FireNext(ctx, sc, false)
	if err != nil {
		t.Fatal(err)
	}
	if !ex.DeadLettered || ex.Delivered != 0 || ex.Err == nil || !strings.Contains(ex.Err.Error(), "AccessDeniedException") ||
		!strings.Contains(ex.Err.Error(), "lambda:InvokeFunction") || ex.Attempts != 1 {
		t.Errorf("schedule %s without lambda:InvokeFunction: %+v; want one refused attempt (not retryable), dead-lettered, naming the action", sc.LogicalID, ex.Delivery)
	}
	denied := sb.IAMLedger().Denied()
	if len(denied) == 0 {
		t.Fatal("the IAM ledger recorded no denial")
	}
	for _, d := range denied {
		if d.Action != "kms:ImportKeyMaterial" && d.Action != "lambda:InvokeFunction" {
			t.Errorf("denied %+v: only kms:ImportKeyMaterial and lambda:InvokeFunction were dropped", d)
		}
	}
}

// TestIAMFindsTheAgentPolicyDefect puts back the statement the outside
// validator found (execute-api:Connect, an action IAM does not define, in
// the agent's policy): the sandbox refuses to start and names it; with the
// statement gone the agent's $connect is denied and it never connects.
func TestIAMFindsTheAgentPolicyDefect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	agentPolicy := func(action string) func(*cfntemplate.Template) error {
		return func(t *cfntemplate.Template) error {
			for _, r := range t.OfType(cfntemplate.TypeManagedPolicy) {
				if !strings.HasPrefix(r.LogicalID, "AgentPolicy") {
					continue
				}
				doc := r.Properties["PolicyDocument"].(map[string]any)
				for _, st := range doc["Statement"].([]any) {
					st.(map[string]any)["Action"] = action
				}
			}
			return nil
		}
	}
	_, err := Start(ctx, Options{Functions: FunctionsRIE, PolicyEdit: agentPolicy("execute-api:Connect")})
	if err == nil || !strings.Contains(err.Error(), "execute-api:Connect") || !strings.Contains(err.Error(), "IAM does not define") {
		t.Fatalf("sandbox with execute-api:Connect in the agent policy: %v; want a refusal naming the action", err)
	}
	// Start gives up at the agent's first denied $connect.
	sb, err := Start(ctx, Options{Functions: FunctionsRIE, PolicyEdit: agentPolicy("execute-api:ManageConnections")})
	if err == nil {
		sb.Close()
		t.Fatal("the agent connected with a policy that does not allow execute-api:Invoke on $connect")
	}
	if !strings.Contains(err.Error(), "IAM denied") || !strings.Contains(err.Error(), "execute-api:Invoke") || !strings.Contains(err.Error(), "/prod/$connect") {
		t.Errorf("start refused with %v; want IAM's denial of execute-api:Invoke on $connect named", err)
	}
}
