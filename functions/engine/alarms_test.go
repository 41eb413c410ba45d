package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/test/dynamotest"
)

const rotateFn = "arn:aws:lambda:us-east-1:111122223333:function:keyferry-rotate"

// alarmGroup is a symmetric group with a threshold and an anomaly alarm
// and expiring material.
func alarmGroup(g, mode string) string {
	return symGroup(g, mode) + `    material_expiration: 30d
    reimport_margin: 7d
    alarms:
      - name: surge
        operation: Decrypt
        type: threshold
        threshold: 1000
        comparison: GreaterThanThreshold
        period: 1m
        evaluation_periods: 2
      - name: odd
        operation: Encrypt
        type: anomaly
        band_width: 2.5
        period: 5m
`
}

// enableAlarms turns on alarm management for the harness's engine. Group
// keys made here have expiring material: at cleanup they are scheduled for
// deletion, so a later test advancing the shared emulator's clock past
// ValidTo does not find them in PendingImport (its orphan sweeper would
// count them).
func (h *harness) enableAlarms(group string) *cloudwatch.Client {
	cw := dynamotest.CloudWatch(h.t)
	h.eng.CloudWatch, h.eng.AlarmAction = cw, rotateFn
	h.t.Cleanup(func() {
		gens, _ := h.st.Generations(h.ctx, group)
		for _, g := range gens {
			_, _ = h.kms.ScheduleKeyDeletion(h.ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(g.KeyARN), PendingWindowInDays: aws.Int32(7)})
		}
	})
	return cw
}

// alarms returns the group's alarms in moto by name.
func (h *harness) alarms(cw *cloudwatch.Client, group string) map[string]cwtypes.MetricAlarm {
	h.t.Helper()
	out, err := cw.DescribeAlarms(h.ctx, &cloudwatch.DescribeAlarmsInput{AlarmNamePrefix: aws.String(engine.AlarmName(group, ""))})
	if err != nil {
		h.t.Fatal(err)
	}
	m := map[string]cwtypes.MetricAlarm{}
	for _, a := range out.MetricAlarms {
		m[aws.ToString(a.AlarmName)] = a
	}
	return m
}

func dims(ds []cwtypes.Dimension) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		m[aws.ToString(d.Name)] = aws.ToString(d.Value)
	}
	return m
}

// requireAlarmsOn checks the group's three alarms watch keyARN, invoke the
// rotate function and carry the file's settings.
func (h *harness) requireAlarmsOn(cw *cloudwatch.Client, group, keyARN string) {
	h.t.Helper()
	got := h.alarms(cw, group)
	if len(got) != 3 {
		h.t.Fatalf("%d alarms for %s, want 3: %v", len(got), group, got)
	}
	for name, a := range got {
		if len(a.AlarmActions) != 1 || a.AlarmActions[0] != rotateFn {
			h.t.Fatalf("%s actions %v, want the rotate function", name, a.AlarmActions)
		}
	}
	surge, ok := got[engine.AlarmName(group, "surge")]
	if !ok {
		h.t.Fatalf("no surge alarm: %v", got)
	}
	if d := dims(surge.Dimensions); d["KeyArn"] != keyARN || d["Operation"] != "Decrypt" ||
		aws.ToString(surge.Namespace) != "AWS/KMS" || aws.ToString(surge.MetricName) != "SuccessfulRequest" ||
		surge.Statistic != cwtypes.StatisticSum || aws.ToFloat64(surge.Threshold) != 1000 ||
		surge.ComparisonOperator != cwtypes.ComparisonOperatorGreaterThanThreshold ||
		aws.ToInt32(surge.Period) != 60 || aws.ToInt32(surge.EvaluationPeriods) != 2 {
		h.t.Fatalf("surge alarm %+v dims %v, want Sum of Decrypt on %s > 1000, 2 x 60s", surge, d, keyARN)
	}
	odd, ok := got[engine.AlarmName(group, "odd")]
	if !ok {
		h.t.Fatalf("no anomaly alarm: %v", got)
	}
	if aws.ToString(odd.ThresholdMetricId) != "ad1" || len(odd.Metrics) != 2 {
		h.t.Fatalf("anomaly alarm: threshold metric %q, %d metrics", aws.ToString(odd.ThresholdMetricId), len(odd.Metrics))
	}
	var band, m1 bool
	for _, q := range odd.Metrics {
		switch aws.ToString(q.Id) {
		case "ad1":
			band = aws.ToString(q.Expression) == "ANOMALY_DETECTION_BAND(m1, 2.5)"
		case "m1":
			m1 = q.MetricStat != nil && dims(q.MetricStat.Metric.Dimensions)["KeyArn"] == keyARN &&
				dims(q.MetricStat.Metric.Dimensions)["Operation"] == "Encrypt" && aws.ToString(q.MetricStat.Stat) == "Sum"
		}
	}
	if !band || !m1 {
		h.t.Fatalf("anomaly alarm metrics %+v: want m1 = Sum of Encrypt on %s and ad1 = ANOMALY_DETECTION_BAND(m1, 2.5)", odd.Metrics, keyARN)
	}
	exp, ok := got[engine.AlarmName(group, engine.MaterialExpiryAlarm)]
	if !ok {
		h.t.Fatalf("no material-expiry alarm: %v", got)
	}
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	if d := dims(exp.Dimensions); d["KeyId"] != keyID || aws.ToString(exp.MetricName) != "SecondsUntilKeyMaterialExpiration" ||
		exp.Statistic != cwtypes.StatisticMinimum || aws.ToFloat64(exp.Threshold) != 7*24*3600 ||
		exp.ComparisonOperator != cwtypes.ComparisonOperatorLessThanThreshold {
		h.t.Fatalf("material-expiry alarm %+v dims %v, want Minimum on KeyId %s < 7d", exp, d, keyID)
	}
}

// TestAlarmsFollowCurrentKey: after a rotation of each mode the group's
// alarms exist on the current key ARN; after an alias-swap rotation they
// moved to the new key; in place they stay on the same key.
func TestAlarmsFollowCurrentKey(t *testing.T) {
	for _, mode := range []string{"alias-swap", "in-place", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			g := uniq("alarms")
			h := newHarness(t, alarmGroup(g, mode))
			cw := h.enableAlarms(g)
			j1 := h.rotate(g, "t1")
			h.requireState(j1, store.StateSucceeded)
			h.requireAlarmsOn(cw, g, j1.KeyARN)
			j2 := h.rotate(g, "t2")
			h.requireState(j2, store.StateSucceeded)
			if cur := aws.ToString(h.aliasTarget("alias/" + g).Arn); cur != j2.KeyARN {
				t.Fatalf("alias on %s, job 2 key %s", cur, j2.KeyARN)
			}
			h.requireAlarmsOn(cw, g, j2.KeyARN)
			if (mode == "alias-swap") != (j2.KeyARN != j1.KeyARN) {
				t.Fatalf("mode %s: key 1 %s, key 2 %s", mode, j1.KeyARN, j2.KeyARN)
			}
		})
	}
}

// TestReconcileAlarmsIdempotentAndPrunes: a second reconcile writes
// nothing; an alarm dropped from the file is deleted; a stray alarm of
// another owner under the same prefix is left alone.
func TestReconcileAlarmsIdempotentAndPrunes(t *testing.T) {
	g := uniq("prune")
	h := newHarness(t, alarmGroup(g, "alias-swap"))
	cw := h.enableAlarms(g)
	j := h.rotate(g, "t1")
	h.requireState(j, store.StateSucceeded)
	rep, err := h.eng.ReconcileAlarms(h.ctx, g)
	if err != nil || len(rep.Put) != 0 || len(rep.Unchanged) != 3 || rep.KeyARN != j.KeyARN {
		t.Fatalf("second reconcile: %+v, %v; want 3 unchanged", rep, err)
	}
	foreign := engine.AlarmName(g, "someone-elses")
	if _, err := cw.PutMetricAlarm(h.ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(foreign), AlarmDescription: aws.String("not keyferry"),
		Namespace: aws.String("AWS/KMS"), MetricName: aws.String("SuccessfulRequest"), Statistic: cwtypes.StatisticSum,
		Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	h.cfg.Groups[0].Alarms = h.cfg.Groups[0].Alarms[:1] // "odd" removed from the file
	rep, err = h.eng.ReconcileAlarms(h.ctx, g)
	if err != nil || len(rep.Deleted) != 1 || rep.Deleted[0] != engine.AlarmName(g, "odd") {
		t.Fatalf("reconcile after removal: %+v, %v; want odd deleted", rep, err)
	}
	got := h.alarms(cw, g)
	if _, ok := got[engine.AlarmName(g, "odd")]; ok {
		t.Fatal("removed alarm still exists")
	}
	if _, ok := got[foreign]; !ok {
		t.Fatal("an alarm keyferry does not own was deleted")
	}
}

// TestAlarmOwner: names map back to their group; the material-expiry alarm
// is marked; names two groups share are refused, not guessed.
func TestAlarmOwner(t *testing.T) {
	a, ab := uniq("own"), ""
	ab = a + "-b"
	y := alarmGroup(a, "alias-swap") + fmt.Sprintf("      - name: b-c\n        operation: Decrypt\n        type: threshold\n        threshold: 5\n") +
		symGroup(ab, "alias-swap")
	h := newHarness(t, y)
	// shared/groups refuses a file where two (group, alarm) pairs spell one
	// name; the engine still refuses such a name rather than guess (defence
	// in depth), so the clash is injected after validation.
	for i := range h.cfg.Groups {
		if h.cfg.Groups[i].Name == ab {
			h.cfg.Groups[i].Alarms = append(h.cfg.Groups[i].Alarms, groups.Alarm{Name: "c", Operation: "Decrypt", Type: groups.AlarmThreshold, Threshold: 5})
		}
	}
	for _, tc := range []struct {
		name    string
		group   string
		expiry  bool
		wantErr error
	}{
		{engine.AlarmName(a, "surge"), a, false, nil},
		{engine.AlarmName(a, engine.MaterialExpiryAlarm), a, true, nil},
		{"surge", a, false, nil},
		{engine.AlarmName(a, "b-c"), "", false, engine.ErrAmbiguousAlarm},
		{engine.AlarmName(ab, engine.MaterialExpiryAlarm), "", false, engine.ErrUnknownAlarm},
		{"keyferry-nope-x", "", false, engine.ErrUnknownAlarm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := h.eng.AlarmOwner(tc.name)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("AlarmOwner(%q) = %+v, %v; want %v", tc.name, ref, err, tc.wantErr)
				}
				return
			}
			if err != nil || ref.Group.Name != tc.group || ref.MaterialExpiry != tc.expiry {
				t.Fatalf("AlarmOwner(%q) = %+v, %v", tc.name, ref, err)
			}
		})
	}
}
