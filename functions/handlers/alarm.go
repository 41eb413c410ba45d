package handlers

import (
	"encoding/json"
	"time"

	"github.com/keyferry/keyferry/functions/engine"
)

// AlarmStateValue is a CloudWatch alarm state.
type AlarmStateValue string

// Alarm states.
const (
	AlarmStateAlarm            AlarmStateValue = "ALARM"
	AlarmStateOK               AlarmStateValue = "OK"
	AlarmStateInsufficientData AlarmStateValue = "INSUFFICIENT_DATA"
)

// AlarmState is the state block of an alarm event.
type AlarmState struct {
	Value      AlarmStateValue `json:"value"`
	Reason     string          `json:"reason"`
	ReasonData string          `json:"reasonData,omitempty"`
	// Timestamp of the state change, e.g. "2024-01-01T00:00:00.000+0000":
	// identical on every delivery of one change, so it keys idempotency.
	Timestamp string `json:"timestamp"`
}

// AlarmData is the alarmData / detail block shared by both alarm event shapes.
type AlarmData struct {
	AlarmName     string          `json:"alarmName"`
	State         AlarmState      `json:"state"`
	PreviousState AlarmState      `json:"previousState"`
	Configuration json.RawMessage `json:"configuration,omitempty"`
}

// CloudWatchAlarmEvent is the payload a CloudWatch alarm sends when it
// invokes a Lambda directly (principal lambda.alarms.cloudwatch.amazonaws.com);
// aws-lambda-go has no type for it.
type CloudWatchAlarmEvent struct {
	Source    string `json:"source"` // "aws.cloudwatch"
	AlarmARN  string `json:"alarmArn"`
	AccountID string `json:"accountId"`
	// Time is like "2024-01-02T03:04:05.000+0000" (not RFC 3339: no colon
	// in the offset), so it stays a string.
	Time      string    `json:"time"`
	Region    string    `json:"region"`
	AlarmData AlarmData `json:"alarmData"`
}

// AlarmStateChangeEvent is the EventBridge event (detail-type "CloudWatch
// Alarm State Change", source aws.cloudwatch).
type AlarmStateChangeEvent struct {
	Version    string    `json:"version"`
	ID         string    `json:"id"`
	DetailType string    `json:"detail-type"`
	Source     string    `json:"source"`
	Account    string    `json:"account"`
	Time       time.Time `json:"time"`
	Region     string    `json:"region"`
	Resources  []string  `json:"resources"` // [alarm ARN]
	Detail     AlarmData `json:"detail"`
}

// DetailTypeAlarmStateChange is the EventBridge detail-type of alarm events.
const DetailTypeAlarmStateChange = "CloudWatch Alarm State Change"

// AlarmName is the CloudWatch alarm name keyferry uses for alarm a of group
// g (engine.AlarmName: the engine creates alarms with this name on the
// current key; Rotate maps names back with engine.AlarmOwner).
func AlarmName(group, alarm string) string { return engine.AlarmName(group, alarm) }
