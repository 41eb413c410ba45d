package cfntemplate

import (
	"fmt"
	"sort"
)

// Resource types of the trigger views.
const (
	TypePermission = "AWS::Lambda::Permission"
	TypeAlarm      = "AWS::CloudWatch::Alarm"
	TypeQueue      = "AWS::SQS::Queue"
)

// RetryPolicy is a schedule's or a rule target's retry policy. A field the
// template leaves out is -1 (the service default applies).
type RetryPolicy struct {
	MaximumRetryAttempts     int
	MaximumEventAgeInSeconds int
}

// Schedule is an AWS::Scheduler::Schedule. Values that may be intrinsics
// (target and DLQ ARNs) stay raw for a Resolver; their logical ids are
// given when they are a Ref or GetAtt.
type Schedule struct {
	LogicalID  string
	Name       string // the Name property; empty: CloudFormation generates one
	Expression string
	Timezone   string // empty: UTC
	State      string // ENABLED (default) or DISABLED
	// WindowMode is OFF or FLEXIBLE; WindowMinutes the maximum window.
	WindowMode    string
	WindowMinutes int

	TargetArn       any
	TargetLogicalID string
	// RoleLogicalID is the execution role Scheduler assumes to invoke the
	// target (Target.RoleArn's resource; empty when not a reference).
	RoleLogicalID string
	// Input is the target's Input exactly as the template gives it (the
	// bytes the target receives); HasInput false when the template sets none.
	Input    string
	HasInput bool
	Retry    RetryPolicy
	// DLQArn is Target.DeadLetterConfig.Arn (nil: none).
	DLQArn       any
	DLQLogicalID string
}

// Schedules lists the template's schedules, sorted by logical id.
func (t *Template) Schedules() ([]Schedule, error) {
	var out []Schedule
	for _, r := range t.OfType(TypeSchedule) {
		p := r.Properties
		s := Schedule{LogicalID: r.LogicalID, Name: str(p["Name"]), Expression: str(p["ScheduleExpression"]),
			Timezone: str(p["ScheduleExpressionTimezone"]), State: str(p["State"]), WindowMode: "OFF"}
		if s.State == "" {
			s.State = "ENABLED"
		}
		if s.Expression == "" {
			return nil, fmt.Errorf("cfntemplate: schedule %s in %s has no ScheduleExpression", r.LogicalID, t.Path)
		}
		if w, ok := p["FlexibleTimeWindow"].(map[string]any); ok {
			if m := str(w["Mode"]); m != "" {
				s.WindowMode = m
			}
			if n, ok := num(w["MaximumWindowInMinutes"]); ok {
				s.WindowMinutes = int(n)
			}
		}
		if s.WindowMode == "FLEXIBLE" && s.WindowMinutes <= 0 {
			return nil, fmt.Errorf("cfntemplate: schedule %s: FLEXIBLE window without MaximumWindowInMinutes", r.LogicalID)
		}
		tg, ok := p["Target"].(map[string]any)
		if !ok || tg["Arn"] == nil {
			return nil, fmt.Errorf("cfntemplate: schedule %s in %s has no Target.Arn", r.LogicalID, t.Path)
		}
		s.TargetArn, s.TargetLogicalID = tg["Arn"], refTarget(tg["Arn"])
		if tg["RoleArn"] != nil {
			s.RoleLogicalID = refTarget(tg["RoleArn"])
		}
		if in, ok := tg["Input"]; ok {
			v, isStr := in.(string)
			if !isStr {
				return nil, fmt.Errorf("cfntemplate: schedule %s: Target.Input is not a string", r.LogicalID)
			}
			s.Input, s.HasInput = v, true
		}
		var err error
		if s.Retry, err = retryPolicy(r.LogicalID, tg["RetryPolicy"]); err != nil {
			return nil, err
		}
		if d, ok := tg["DeadLetterConfig"].(map[string]any); ok && d["Arn"] != nil {
			s.DLQArn, s.DLQLogicalID = d["Arn"], refTarget(d["Arn"])
		}
		out = append(out, s)
	}
	return out, nil
}

func retryPolicy(id string, v any) (RetryPolicy, error) {
	rp := RetryPolicy{MaximumRetryAttempts: -1, MaximumEventAgeInSeconds: -1}
	m, ok := v.(map[string]any)
	if !ok {
		return rp, nil
	}
	if x, ok := m["MaximumRetryAttempts"]; ok {
		n, ok := num(x)
		if !ok || n < 0 {
			return rp, fmt.Errorf("cfntemplate: %s: RetryPolicy.MaximumRetryAttempts %v is not a count", id, x)
		}
		rp.MaximumRetryAttempts = int(n)
	}
	if x, ok := m["MaximumEventAgeInSeconds"]; ok {
		n, ok := num(x)
		if !ok || n < 0 {
			return rp, fmt.Errorf("cfntemplate: %s: RetryPolicy.MaximumEventAgeInSeconds %v is not a duration", id, x)
		}
		rp.MaximumEventAgeInSeconds = int(n)
	}
	return rp, nil
}

// RuleTarget is one target of an AWS::Events::Rule.
type RuleTarget struct {
	ID              string
	Arn             any
	TargetLogicalID string
	// Input, InputPath and InputTransformer as the template gives them
	// (at most one is set; none: the target gets the whole event).
	Input            string
	HasInput         bool
	InputPath        string
	InputTransformer map[string]any
	Retry            RetryPolicy
	DLQArn           any
	DLQLogicalID     string
}

// Rule is an AWS::Events::Rule with an event pattern.
type Rule struct {
	LogicalID    string
	Name         string
	State        string
	EventBusName string
	// EventPattern is the pattern as JSON-decoded from the template.
	EventPattern map[string]any
	// ScheduleExpression is set for a scheduled rule (no pattern).
	ScheduleExpression string
	Targets            []RuleTarget
}

// Rules lists the template's EventBridge rules, sorted by logical id.
func (t *Template) Rules() ([]Rule, error) {
	var out []Rule
	for _, r := range t.OfType(TypeEventsRule) {
		p := r.Properties
		ru := Rule{LogicalID: r.LogicalID, Name: str(p["Name"]), State: str(p["State"]), EventBusName: str(p["EventBusName"]),
			ScheduleExpression: str(p["ScheduleExpression"])}
		if ru.State == "" {
			ru.State = "ENABLED"
		}
		if ep, ok := p["EventPattern"]; ok {
			m, ok := ep.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("cfntemplate: rule %s in %s: EventPattern is not an object", r.LogicalID, t.Path)
			}
			ru.EventPattern = m
		}
		for i, x := range list(p["Targets"]) {
			tg, ok := x.(map[string]any)
			if !ok || tg["Arn"] == nil {
				return nil, fmt.Errorf("cfntemplate: rule %s: target %d has no Arn", r.LogicalID, i)
			}
			rt := RuleTarget{ID: str(tg["Id"]), Arn: tg["Arn"], TargetLogicalID: refTarget(tg["Arn"]), InputPath: str(tg["InputPath"])}
			if in, ok := tg["Input"].(string); ok {
				rt.Input, rt.HasInput = in, true
			}
			if it, ok := tg["InputTransformer"].(map[string]any); ok {
				rt.InputTransformer = it
			}
			var err error
			if rt.Retry, err = retryPolicy(r.LogicalID+"/"+rt.ID, tg["RetryPolicy"]); err != nil {
				return nil, err
			}
			if d, ok := tg["DeadLetterConfig"].(map[string]any); ok && d["Arn"] != nil {
				rt.DLQArn, rt.DLQLogicalID = d["Arn"], refTarget(d["Arn"])
			}
			ru.Targets = append(ru.Targets, rt)
		}
		out = append(out, ru)
	}
	return out, nil
}

// Permission is an AWS::Lambda::Permission (who may invoke a function).
type Permission struct {
	LogicalID         string
	Action            string
	FunctionName      any
	FunctionLogicalID string
	Principal         string
	SourceArn         any
	SourceAccount     any
}

// Permissions lists the template's Lambda permissions, sorted by logical id.
func (t *Template) Permissions() []Permission {
	var out []Permission
	for _, r := range t.OfType(TypePermission) {
		p := r.Properties
		out = append(out, Permission{LogicalID: r.LogicalID, Action: str(p["Action"]), FunctionName: p["FunctionName"],
			FunctionLogicalID: refTarget(p["FunctionName"]), Principal: str(p["Principal"]),
			SourceArn: p["SourceArn"], SourceAccount: p["SourceAccount"]})
	}
	return out
}

// Alarm is an AWS::CloudWatch::Alarm, with its actions raw.
type Alarm struct {
	LogicalID   string
	Name        string // AlarmName; empty: generated
	Description string
	// AlarmActions, OKActions: raw (may be intrinsics).
	AlarmActions []any
	OKActions    []any
	Namespace    string
	MetricName   string
	Properties   map[string]any
}

// Alarms lists the template's alarms, sorted by logical id.
func (t *Template) Alarms() []Alarm {
	var out []Alarm
	for _, r := range t.OfType(TypeAlarm) {
		p := r.Properties
		out = append(out, Alarm{LogicalID: r.LogicalID, Name: str(p["AlarmName"]), Description: str(p["AlarmDescription"]),
			AlarmActions: list(p["AlarmActions"]), OKActions: list(p["OKActions"]),
			Namespace: str(p["Namespace"]), MetricName: str(p["MetricName"]), Properties: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalID < out[j].LogicalID })
	return out
}
