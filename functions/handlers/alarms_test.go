package handlers_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/test/dynamotest"
)

const rotateFn = "arn:aws:lambda:us-east-1:111122223333:function:keyferry-rotate"

// reconciled gives g1 a current generation on a key, lets the engine put
// the group's alarms in moto, and returns them by name.
func reconciled(t *testing.T, f *fixture, expiresAt time.Time) map[string]string {
	t.Helper()
	ctx := context.Background()
	cw := dynamotest.CloudWatch(t)
	f.d.Engine.CloudWatch, f.d.Engine.AlarmAction = cw, rotateFn
	key := "arn:aws:kms:us-east-1:111122223333:key/" + strings.ReplaceAll(t.Name(), "/", "-")
	now := emu.Now()
	if err := f.st.PutGeneration(ctx, &store.Generation{Group: "g1", Generation: 1, KeyARN: key, HSMLabel: "kf/g1/1",
		KeySpec: "SYMMETRIC_DEFAULT", Mode: engine.ModeAliasSwap, State: store.GenCurrent, CreatedAt: now, ExpiresAt: expiresAt, JobID: "job-seed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.Engine.ReconcileAlarms(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	out, err := cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(handlers.AlarmName("g1", ""))})
	if err != nil {
		t.Fatal(err)
	}
	arns := map[string]string{}
	for _, a := range out.MetricAlarms {
		arns[aws.ToString(a.AlarmName)] = aws.ToString(a.AlarmArn)
	}
	return arns
}

// firing is the direct alarm payload (testdata/alarm-direct.json) for the
// alarm name and ARN CloudWatch holds.
func firing(t *testing.T, name, arn, ts string) json.RawMessage {
	t.Helper()
	var ev handlers.CloudWatchAlarmEvent
	if err := json.Unmarshal(load(t, "alarm-direct.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev.AlarmARN, ev.AlarmData.AlarmName, ev.AlarmData.State.Timestamp = arn, name, ts
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEngineAlarmFiringStartsRotation: the alarm the engine created for g1
// (named by handlers.AlarmName), firing with CloudWatch's direct payload,
// starts a rotation of g1; a second state change inside the cooldown is
// skipped.
func TestEngineAlarmFiringStartsRotation(t *testing.T) {
	f := newDeps(t)
	arns := reconciled(t, f, time.Time{})
	name := handlers.AlarmName("g1", "surge")
	arn, ok := arns[name]
	if !ok || arn == "" {
		t.Fatalf("engine did not create %s: %v", name, arns)
	}
	out, err := f.d.Rotate(context.Background(), firing(t, name, arn, "2026-01-02T03:04:05.123+0000"))
	if err != nil {
		t.Fatal(err)
	}
	res := out.(handlers.RotateResult)
	if res.Outcome != store.Started || res.Group != "g1" || res.JobID == "" {
		t.Fatalf("alarm firing: %+v, want a started rotation of g1", res)
	}
	j, err := f.st.GetJob(context.Background(), res.JobID)
	if err != nil || j.Kind != store.KindRotate || j.Trigger != "alarm" {
		t.Fatalf("job %+v, %v: want a rotate job triggered by the alarm", j, err)
	}
	out, err = f.d.Rotate(context.Background(), firing(t, name, arn, "2026-01-02T03:09:05.123+0000"))
	if err != nil {
		t.Fatal(err)
	}
	if res := out.(handlers.RotateResult); res.Outcome == store.Started {
		t.Fatalf("second firing inside the cooldown started another job: %+v", res)
	}
}

// TestMaterialExpiryAlarmStartsReimport: the material-expiry alarm starts a
// re-import of the expiring generation (not a rotation), once per
// generation and ValidTo across redeliveries.
func TestMaterialExpiryAlarmStartsReimport(t *testing.T) {
	f := newDeps(t)
	g := &f.d.Engine.Groups.Groups[0]
	g.MaterialExpiration = groups.Expiration{ValidFor: groups.Duration(30 * 24 * time.Hour)}
	g.ReimportMargin = groups.Duration(7 * 24 * time.Hour)
	arns := reconciled(t, f, emu.Now().Add(48*time.Hour))
	name := handlers.AlarmName("g1", engine.MaterialExpiryAlarm)
	arn, ok := arns[name]
	if !ok {
		t.Fatalf("engine did not create %s: %v", name, arns)
	}
	var first string
	for i, ts := range []string{"2026-01-02T03:04:05.123+0000", "2026-01-02T04:04:05.123+0000"} {
		out, err := f.d.Rotate(context.Background(), firing(t, name, arn, ts))
		if err != nil {
			t.Fatal(err)
		}
		res := out.(handlers.RotateResult)
		if len(res.Jobs) != 1 || res.Group != "g1" {
			t.Fatalf("delivery %d: %+v, want one re-import job of g1", i, res)
		}
		j, err := f.st.GetJob(context.Background(), res.Jobs[0])
		if err != nil || j.Kind != store.KindReimport || j.ReimportGeneration != 1 {
			t.Fatalf("job %+v, %v: want a re-import of generation 1", j, err)
		}
		if i == 0 {
			first = j.ID
		} else if j.ID != first {
			t.Fatalf("second firing started job %s, first was %s", j.ID, first)
		}
	}
}
