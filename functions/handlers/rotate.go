package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// SchedulePayload is the EventBridge Scheduler input. ID, when set (e.g.
// from <aws.scheduler.execution-id> or <aws.scheduler.scheduled-time>),
// keys idempotency; otherwise the Lambda request id does (retries of one
// asynchronous invocation keep it).
type SchedulePayload struct {
	Group   string `json:"group"`
	Trigger string `json:"trigger"`
	ID      string `json:"id,omitempty"`
}

// RotateResult is what Rotate returns (and logs).
type RotateResult struct {
	Group   string        `json:"group,omitempty"`
	JobID   string        `json:"job_id,omitempty"`
	Outcome store.Outcome `json:"outcome,omitempty"`
	State   store.State   `json:"state,omitempty"`
	Reason  string        `json:"reason,omitempty"`
	Ignored string        `json:"ignored,omitempty"`
	// Jobs lists the re-import jobs a material-expiry alarm started.
	Jobs []string `json:"jobs,omitempty"`
}

// ErrBadTrigger: the payload is not a known trigger (nothing changed).
var ErrBadTrigger = errors.New("handlers: unrecognised rotate payload")

// ErrOperatorViaRotate: an operator request sent to the rotate function.
// Whoever may invoke rotate (the Scheduler's role, the alarm principal) must
// not be able to engage the kill switch: operator actions go only through
// the operator function, whose invoke permission is the operator's alone.
var ErrOperatorViaRotate = errors.New("handlers: operator requests go to the operator function, not rotate")

// DefaultAlarmCooldown applies when an alarm sets no cooldown (the
// key-group file's default, written once there).
const DefaultAlarmCooldown = groups.DefaultAlarmCooldown

// Rotate accepts the Scheduler payload and both alarm shapes. It refuses an
// operator request ({"operator": {...}}) with ErrOperatorViaRotate.
func (d *Deps) Rotate(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&probe); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrBadTrigger, err)
	}
	switch {
	case probe["operator"] != nil || probe["action"] != nil:
		d.log().WarnContext(ctx, "operator request refused by the rotate function")
		return nil, fmt.Errorf("%w: %w", ErrBadTrigger, ErrOperatorViaRotate)
	case probe["alarmArn"] != nil:
		var ev CloudWatchAlarmEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("%w: alarm payload: %v", ErrBadTrigger, err)
		}
		return d.alarm(ctx, ev.AlarmARN, ev.AlarmData)
	case probe["detail-type"] != nil:
		var ev AlarmStateChangeEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("%w: EventBridge event: %v", ErrBadTrigger, err)
		}
		if ev.DetailType != DetailTypeAlarmStateChange {
			return RotateResult{Ignored: "detail-type " + ev.DetailType}, nil
		}
		arn := ""
		if len(ev.Resources) > 0 {
			arn = ev.Resources[0]
		}
		return d.alarm(ctx, arn, ev.Detail)
	case probe["group"] != nil:
		var p SchedulePayload
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("%w: schedule payload: %v", ErrBadTrigger, err)
		}
		if p.Trigger != "schedule" || p.Group == "" {
			return nil, fmt.Errorf("%w: schedule payload needs group and trigger \"schedule\"", ErrBadTrigger)
		}
		id := p.ID
		if id == "" {
			if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
				id = "lambda-request/" + lc.AwsRequestID
			} else {
				id = "minute/" + d.now().Truncate(time.Minute).Format(time.RFC3339)
			}
		}
		return d.start(ctx, engine.TriggerRequest{Group: p.Group, Trigger: "schedule", TriggerID: "schedule/" + id})
	}
	return nil, fmt.Errorf("%w: expected a Scheduler payload or a CloudWatch alarm event", ErrBadTrigger)
}

func (d *Deps) alarm(ctx context.Context, arn string, data AlarmData) (any, error) {
	log := d.log().With("alarm", data.AlarmName, "state", string(data.State.Value))
	if data.State.Value != AlarmStateAlarm {
		log.InfoContext(ctx, "alarm event ignored: not ALARM")
		return RotateResult{Ignored: "alarm state " + string(data.State.Value)}, nil
	}
	ref, err := d.Engine.AlarmOwner(data.AlarmName)
	if err != nil {
		log.WarnContext(ctx, "alarm maps to no single group", "error", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrBadTrigger, err)
	}
	if ref.MaterialExpiry {
		// Material about to expire: re-import it (same trigger ids as
		// keepalive, so both paths start one job per generation).
		jobs, err := d.Engine.KeepaliveGroup(ctx, ref.Group.Name)
		res := RotateResult{Group: ref.Group.Name}
		for _, j := range jobs {
			res.Jobs = append(res.Jobs, j.ID)
		}
		if len(jobs) > 0 {
			res.JobID, res.State, res.Reason = jobs[0].ID, jobs[0].State, jobs[0].Reason
		}
		if err != nil && !errors.Is(err, engine.ErrNoAgent) {
			return res, err
		}
		return res, nil
	}
	cooldown := ref.Alarm.Cooldown.Std()
	if cooldown <= 0 {
		cooldown = DefaultAlarmCooldown
	}
	// The same state change, delivered directly and via EventBridge or
	// twice by either, has the same name and timestamp: one job.
	id := fmt.Sprintf("alarm/%s/%s", data.AlarmName, data.State.Timestamp)
	return d.start(ctx, engine.TriggerRequest{Group: ref.Group.Name, Trigger: "alarm", TriggerID: id, Cooldown: cooldown})
}

func (d *Deps) start(ctx context.Context, r engine.TriggerRequest) (RotateResult, error) {
	j, outcome, err := d.Engine.Start(ctx, r)
	if j == nil {
		return RotateResult{Group: r.Group}, err
	}
	res := RotateResult{Group: r.Group, JobID: j.ID, Outcome: outcome, State: j.State, Reason: j.Reason}
	if err != nil && !errors.Is(err, engine.ErrNoAgent) {
		return res, err
	}
	// No agent yet: the job waits; the sweeper retries it.
	return res, nil
}
