package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/sandbox"
)

// alarmTimestamp formats t as CloudWatch does in alarm events.
func alarmTimestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

func alarmData(name, ts string) handlers.AlarmData {
	return handlers.AlarmData{
		AlarmName: name,
		State: handlers.AlarmState{
			Value:     handlers.AlarmStateAlarm,
			Reason:    "Threshold Crossed: 1 out of the last 1 datapoints [1500.0] was greater than the threshold (1000.0)",
			Timestamp: ts,
		},
		PreviousState: handlers.AlarmState{Value: handlers.AlarmStateOK, Reason: "Threshold Crossed", Timestamp: alarmTimestamp(time.Now().Add(-time.Hour))},
		Configuration: json.RawMessage(`{"description":"keyferry e2e","metrics":[{"id":"m1","metricStat":{"metric":{"namespace":"AWS/KMS","name":"SuccessfulRequest","dimensions":{"Operation":"Decrypt"}},"period":300,"stat":"Sum"},"returnData":true}]}`),
	}
}

// directAlarm is the payload of a CloudWatch alarm invoking the rotate
// Lambda directly (principal lambda.alarms.cloudwatch.amazonaws.com).
func directAlarm(t *testing.T, name, ts string) []byte {
	arn := "arn:aws:cloudwatch:" + sandbox.Region + ":" + sandbox.Account + ":alarm:" + name
	b, err := json.Marshal(handlers.CloudWatchAlarmEvent{
		Source: "aws.cloudwatch", AlarmARN: arn, AccountID: sandbox.Account, Region: sandbox.Region,
		Time: ts, AlarmData: alarmData(name, ts),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventBridgeAlarm is the same state change as an EventBridge "CloudWatch
// Alarm State Change" event.
func eventBridgeAlarm(t *testing.T, name, ts string) []byte {
	arn := "arn:aws:cloudwatch:" + sandbox.Region + ":" + sandbox.Account + ":alarm:" + name
	b, err := json.Marshal(handlers.AlarmStateChangeEvent{
		Version: "0", ID: "e2e-" + ts, DetailType: handlers.DetailTypeAlarmStateChange, Source: "aws.cloudwatch",
		Account: sandbox.Account, Time: time.Now().UTC().Truncate(time.Second), Region: sandbox.Region,
		Resources: []string{arn}, Detail: alarmData(name, ts),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlarmDrivenRotation: one ALARM state change of payments-data's
// decrypt-surge alarm, delivered both directly and through EventBridge,
// makes exactly one rotation job, which succeeds; a later state change
// inside the alarm's 1 min cooldown starts nothing (SKIPPED with a reason).
func TestAlarmDrivenRotation(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	const group = "payments-data"
	name := handlers.AlarmName(group, "decrypt-surge")
	gensBefore := len(generations(t, s, group))
	ts := alarmTimestamp(time.Now())

	direct := rotatePayload(t, s, directAlarm(t, name, ts))
	viaEB := rotatePayload(t, s, eventBridgeAlarm(t, name, ts))
	if direct.Outcome != store.Started || direct.Group != group {
		t.Fatalf("direct alarm delivery: %+v, want a started job for %s", direct, group)
	}
	if viaEB.JobID != direct.JobID || viaEB.Outcome != store.Duplicate {
		t.Errorf("EventBridge delivery of the same state change: job %s outcome %s, want duplicate of %s", viaEB.JobID, viaEB.Outcome, direct.JobID)
	}
	j := succeeded(t, s, direct.JobID)
	if j.Trigger != "alarm" || j.Kind != store.KindRotate {
		t.Errorf("job trigger %s kind %s, want alarm rotate", j.Trigger, j.Kind)
	}
	// A second delivery after the job ended is still the same job.
	if again := rotatePayload(t, s, directAlarm(t, name, ts)); again.JobID != direct.JobID {
		t.Errorf("late redelivery started job %s, want %s", again.JobID, direct.JobID)
	}
	if got := len(generations(t, s, group)); got != gensBefore+1 {
		t.Fatalf("generations %d, want %d (exactly one rotation)", got, gensBefore+1)
	}

	// A new state change (new timestamp) inside the cooldown.
	third := rotatePayload(t, s, eventBridgeAlarm(t, name, alarmTimestamp(time.Now().Add(time.Second))))
	if third.Outcome != store.Skipped || third.State != store.StateSkipped || third.Reason == "" {
		t.Errorf("alarm inside cooldown: %+v, want SKIPPED with a reason", third)
	}
	if got := len(generations(t, s, group)); got != gensBefore+1 {
		t.Errorf("generations %d after the cooldown delivery, want %d", got, gensBefore+1)
	}
	// OK transitions never rotate.
	ok := directAlarm(t, name, alarmTimestamp(time.Now().Add(2*time.Second)))
	var ev map[string]any
	json.Unmarshal(ok, &ev)
	ev["alarmData"].(map[string]any)["state"].(map[string]any)["value"] = "OK"
	ok, _ = json.Marshal(ev)
	if r := rotatePayload(t, s, ok); r.JobID != "" || r.Ignored == "" {
		t.Errorf("OK state change: %+v, want ignored", r)
	}
}
