package sandbox

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/iamsim"
)

// TestFunctionsRIE brings the sandbox up with every function as its real
// bootstrap behind the RIE, rotates every sample group, and checks the
// instances ran as separate processes with the template's configuration.
func TestFunctionsRIE(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sb, err := Start(ctx, Options{Functions: FunctionsRIE})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, g := range sb.Groups.Groups {
		res, err := sb.Trigger(ctx, g.Name, "schedule", "rie-"+g.Name)
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		j, err := sb.WaitJob(ctx, res.JobID, 90*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		if string(j.State) != "SUCCEEDED" {
			t.Errorf("%s: job %s %s: %s", g.Name, j.ID, j.State, j.Reason)
		}
	}
	for _, fn := range []string{"keyferry-rotate", "keyferry-connect", "keyferry-agent-message"} {
		st := sb.Runtime.Stats(fn)
		if st.Invocations == 0 || st.ColdStarts == 0 || st.AliveNow == 0 {
			t.Errorf("%s: stats %+v", fn, st)
		}
		for _, pid := range sb.Runtime.PIDs(fn) {
			cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if !strings.Contains(string(cmdline), "aws-lambda-rie") || !strings.Contains(string(cmdline), "--runtime-api-address\x00127.0.0.1:") {
				t.Errorf("%s: instance %d runs %q", fn, pid, cmdline)
			}
		}
	}
	// IAM from the template: no call of a healthy rotation is denied; the
	// calls per principal and the grants no call used are the
	// least-privilege figures.
	if d := sb.IAMLedger().Denied(); len(d) > 0 {
		t.Errorf("IAM denied %d calls of a healthy rotation, first %+v", len(d), d[0])
	}
	recs := sb.IAMLedger().Records()
	if len(recs) == 0 {
		t.Error("the IAM ledger recorded no call")
	}
	calls := iamsim.CallsByPrincipal(recs)
	for p, byAction := range calls {
		t.Logf("IAM calls by %s: %v", p, byAction)
	}
	for p, unused := range iamsim.Unused(sb.IAMPrincipals(), recs) {
		if len(unused) > 0 {
			t.Logf("IAM grants %s never used: %v", p, unused)
		}
	}
	// The template's schedules, as Scheduler delivers them: each invokes
	// its target as its execution role, which IAM allows.
	trig, err := sb.StartTriggers(ctx, sb.Template, TriggerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := trig.FireAll(ctx)
	if err != nil || len(ex) == 0 {
		t.Fatalf("fire the template's %d schedules: %d executions, %v", len(trig.Scheduler.Schedules), len(ex), err)
	}
	for _, e := range ex {
		if e.Delivered == 0 || e.DeadLettered {
			t.Errorf("schedule %s: %+v", e.Schedule, e.Delivery)
		}
	}
	byScheduler := 0
	for _, r := range sb.IAMLedger().Records() {
		if r.Action == "lambda:InvokeFunction" && r.Decision == "Allowed" && strings.Contains(r.Principal, "Schedule") {
			byScheduler++
		}
	}
	if byScheduler < len(ex) {
		t.Errorf("IAM allowed lambda:InvokeFunction to a Scheduler role %d times for %d executions", byScheduler, len(ex))
	}
	rot, err := sb.Template.Function("rotate")
	if err != nil || rot.Timeout != 120*time.Second {
		t.Errorf("rotate in the template: %+v %v", rot, err)
	}
}
