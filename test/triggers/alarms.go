package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// AlarmState is the state part of the alarm payload.
type AlarmState struct {
	Value      string `json:"value"`
	Reason     string `json:"reason"`
	ReasonData string `json:"reasonData,omitempty"`
	Timestamp  string `json:"timestamp"`
}

// AlarmMetric is one entry of configuration.metrics.
type AlarmMetric struct {
	ID         string           `json:"id"`
	MetricStat *AlarmMetricStat `json:"metricStat,omitempty"`
	Expression string           `json:"expression,omitempty"`
	Label      string           `json:"label,omitempty"`
	ReturnData bool             `json:"returnData"`
}

// AlarmMetricStat is metricStat of an alarm metric.
type AlarmMetricStat struct {
	Metric struct {
		Namespace  string            `json:"namespace"`
		Name       string            `json:"name"`
		Dimensions map[string]string `json:"dimensions"`
	} `json:"metric"`
	Period int32  `json:"period"`
	Stat   string `json:"stat"`
}

// AlarmData is the alarm part of both payloads (alarmData of the Lambda
// alarm action; detail of "CloudWatch Alarm State Change").
type AlarmData struct {
	AlarmName     string     `json:"alarmName"`
	State         AlarmState `json:"state"`
	PreviousState AlarmState `json:"previousState"`
	Configuration struct {
		Description string        `json:"description"`
		Metrics     []AlarmMetric `json:"metrics"`
	} `json:"configuration"`
}

// AlarmPayload is what a CloudWatch alarm whose action is a Lambda
// function sends it.
type AlarmPayload struct {
	Source    string    `json:"source"`
	AlarmArn  string    `json:"alarmArn"`
	AccountID string    `json:"accountId"`
	Time      string    `json:"time"`
	Region    string    `json:"region"`
	AlarmData AlarmData `json:"alarmData"`
}

// cwTime is CloudWatch's timestamp form in alarm payloads.
func cwTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

// Alarms plays CloudWatch's alarm actions: an alarm's state is set in
// CloudWatch (moto_server), and the change is delivered to every Lambda
// AlarmAction (when the alarm enters ALARM) and as "CloudWatch Alarm State
// Change" to the event bus.
type Alarms struct {
	d  *Deliverer
	CW *cloudwatch.Client
	// Bus receives the state change event (nil: none).
	Bus *Bus
	// Permissions are the template's Lambda permissions: a Lambda action
	// is delivered only if one lets lambda.alarms.cloudwatch.amazonaws.com
	// invoke the function for this alarm (as Lambda enforces).
	Permissions []ResolvedPermission
}

// ResolvedPermission is a template Lambda permission with its values.
type ResolvedPermission struct {
	LogicalID, FunctionARN, Principal, SourceArn, SourceAccount string
}

// ResolvePermissions resolves the permissions of t whose principal is a
// trigger service (CloudWatch alarms, EventBridge, Scheduler) with r.
func ResolvePermissions(t *cfntemplate.Template, r *cfntemplate.Resolver) ([]ResolvedPermission, error) {
	var out []ResolvedPermission
	for _, p := range t.Permissions() {
		switch p.Principal {
		case "lambda.alarms.cloudwatch.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com":
		default:
			continue
		}
		rp := ResolvedPermission{LogicalID: p.LogicalID, Principal: p.Principal}
		var err error
		if rp.FunctionARN, err = r.String(p.FunctionName); err != nil {
			return nil, fmt.Errorf("triggers: permission %s: %w", p.LogicalID, err)
		}
		if p.SourceArn != nil {
			if rp.SourceArn, err = r.String(p.SourceArn); err != nil {
				return nil, fmt.Errorf("triggers: permission %s: %w", p.LogicalID, err)
			}
		}
		if p.SourceAccount != nil {
			if rp.SourceAccount, err = r.String(p.SourceAccount); err != nil {
				return nil, fmt.Errorf("triggers: permission %s: %w", p.LogicalID, err)
			}
		}
		out = append(out, rp)
	}
	return out, nil
}

// NewAlarms plays alarms of the CloudWatch at endpoint (moto_server). The
// client speaks the AWS Query protocol: moto 5.2.1 does not route the
// SDK's default Smithy RPC v2 CBOR (see test/dynamotest).
func NewAlarms(d *Deliverer, endpoint string, bus *Bus, perms []ResolvedPermission) *Alarms {
	cw := cloudwatch.New(cloudwatch.Options{Region: d.opts.Region, Credentials: d.opts.Credentials, BaseEndpoint: aws.String(endpoint)},
		func(o *cloudwatch.Options) { o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801) })
	return &Alarms{d: d, CW: cw, Bus: bus, Permissions: perms}
}

// AlarmDelivery is what a state change delivered.
type AlarmDelivery struct {
	Payload AlarmPayload
	// Direct: the Lambda alarm actions' deliveries; Events the bus's.
	Direct []Delivery
	Events []RuleDelivery
}

// ErrNoAlarmPermission: an alarm action names a function no permission
// lets CloudWatch alarms invoke for this alarm.
var ErrNoAlarmPermission = fmt.Errorf("triggers: no Lambda permission for lambda.alarms.cloudwatch.amazonaws.com")

// SetState sets alarm name to state in CloudWatch (SetAlarmState) and
// delivers the change: the documented payload to each Lambda AlarmAction
// (on entering ALARM, actions enabled), the state change event to the bus.
// An unknown alarm is an error and changes nothing.
func (a *Alarms) SetState(ctx context.Context, name string, state cwtypes.StateValue, reason, reasonData string) (AlarmDelivery, error) {
	before, err := a.describe(ctx, name)
	if err != nil {
		return AlarmDelivery{}, err
	}
	in := &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(name), StateValue: state, StateReason: aws.String(reason)}
	if reasonData != "" {
		in.StateReasonData = aws.String(reasonData)
	}
	if _, err := a.CW.SetAlarmState(ctx, in); err != nil {
		return AlarmDelivery{}, fmt.Errorf("triggers: SetAlarmState %s: %w", name, err)
	}
	now := a.d.opts.Clock.Now()
	p := a.payload(before, string(state), reason, reasonData, now)
	var out AlarmDelivery
	out.Payload = p
	if before.StateValue == state {
		return out, nil // no transition: no action, no event
	}
	if state == cwtypes.StateValueAlarm && aws.ToBool(before.ActionsEnabled) {
		body, err := json.Marshal(p)
		if err != nil {
			return out, fmt.Errorf("triggers: alarm payload: %w", err)
		}
		for _, act := range before.AlarmActions {
			if !strings.Contains(act, ":lambda:") || !strings.Contains(act, ":function:") {
				continue
			}
			if !a.permits(act, p.AlarmArn) {
				return out, fmt.Errorf("%w to invoke %s for %s", ErrNoAlarmPermission, act, p.AlarmArn)
			}
			// CloudWatch invokes asynchronously; Lambda's async queue retries.
			out.Direct = append(out.Direct, a.d.deliver(ctx, act, body, now,
				retryPlan{maxRetries: 2, maxAge: 6 * time.Hour, backoff: expBackoff}, "", nil, nil))
		}
	}
	if a.Bus != nil {
		ev, err := a.d.NewEvent("aws.cloudwatch", "CloudWatch Alarm State Change", now, []string{p.AlarmArn}, p.AlarmData)
		if err != nil {
			return out, err
		}
		if out.Events, err = a.Bus.Put(ctx, ev); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (a *Alarms) permits(function, alarmArn string) bool {
	for _, p := range a.Permissions {
		if p.Principal != "lambda.alarms.cloudwatch.amazonaws.com" || functionNameOf(p.FunctionARN) != functionNameOf(function) {
			continue
		}
		if p.SourceAccount != "" && p.SourceAccount != a.d.opts.Account {
			continue
		}
		if p.SourceArn == "" || wildcard(p.SourceArn, alarmArn) {
			return true
		}
	}
	return false
}

func functionNameOf(s string) string {
	if _, n, ok := strings.Cut(s, ":function:"); ok {
		n, _, _ = strings.Cut(n, ":")
		return n
	}
	return s
}

// wildcard matches s against pattern with * (any run) and ? (one char).
func wildcard(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcard(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcard(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && wildcard(pattern[1:], s[1:])
	}
}

func (a *Alarms) describe(ctx context.Context, name string) (cwtypes.MetricAlarm, error) {
	out, err := a.CW.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{AlarmNames: []string{name}})
	if err != nil {
		return cwtypes.MetricAlarm{}, fmt.Errorf("triggers: DescribeAlarms %s: %w", name, err)
	}
	if len(out.MetricAlarms) != 1 {
		return cwtypes.MetricAlarm{}, fmt.Errorf("triggers: no metric alarm named %q in CloudWatch", name)
	}
	return out.MetricAlarms[0], nil
}

// payload builds the documented Lambda alarm payload from the alarm's
// definition and its previous state.
func (a *Alarms) payload(m cwtypes.MetricAlarm, state, reason, reasonData string, now time.Time) AlarmPayload {
	// The sandbox's account, not moto's default one in m.AlarmArn.
	arn := fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", a.d.opts.Region, a.d.opts.Account, aws.ToString(m.AlarmName))
	p := AlarmPayload{Source: "aws.cloudwatch", AlarmArn: arn, AccountID: a.d.opts.Account, Time: cwTime(now), Region: a.d.opts.Region}
	d := &p.AlarmData
	d.AlarmName = aws.ToString(m.AlarmName)
	d.State = AlarmState{Value: state, Reason: reason, ReasonData: reasonData, Timestamp: cwTime(now)}
	prevTime := now
	if m.StateUpdatedTimestamp != nil {
		prevTime = *m.StateUpdatedTimestamp
	}
	d.PreviousState = AlarmState{Value: string(m.StateValue), Reason: aws.ToString(m.StateReason), ReasonData: aws.ToString(m.StateReasonData), Timestamp: cwTime(prevTime)}
	if d.PreviousState.Value == "" {
		d.PreviousState.Value = string(cwtypes.StateValueInsufficientData)
	}
	d.Configuration.Description = aws.ToString(m.AlarmDescription)
	d.Configuration.Metrics = []AlarmMetric{}
	dims := func(ds []cwtypes.Dimension) map[string]string {
		out := map[string]string{}
		for _, x := range ds {
			out[aws.ToString(x.Name)] = aws.ToString(x.Value)
		}
		return out
	}
	if len(m.Metrics) > 0 {
		for _, q := range m.Metrics {
			am := AlarmMetric{ID: aws.ToString(q.Id), Expression: aws.ToString(q.Expression), Label: aws.ToString(q.Label), ReturnData: aws.ToBool(q.ReturnData)}
			if q.MetricStat != nil && q.MetricStat.Metric != nil {
				ms := &AlarmMetricStat{Period: aws.ToInt32(q.MetricStat.Period), Stat: aws.ToString(q.MetricStat.Stat)}
				ms.Metric.Namespace, ms.Metric.Name, ms.Metric.Dimensions = aws.ToString(q.MetricStat.Metric.Namespace), aws.ToString(q.MetricStat.Metric.MetricName), dims(q.MetricStat.Metric.Dimensions)
				am.MetricStat = ms
			}
			d.Configuration.Metrics = append(d.Configuration.Metrics, am)
		}
	} else if m.MetricName != nil {
		ms := &AlarmMetricStat{Period: aws.ToInt32(m.Period), Stat: string(m.Statistic)}
		if ms.Stat == "" {
			ms.Stat = aws.ToString(m.ExtendedStatistic)
		}
		ms.Metric.Namespace, ms.Metric.Name, ms.Metric.Dimensions = aws.ToString(m.Namespace), aws.ToString(m.MetricName), dims(m.Dimensions)
		// CloudWatch names a single-metric alarm's metric with a generated id.
		d.Configuration.Metrics = append(d.Configuration.Metrics, AlarmMetric{ID: "m" + strings.ReplaceAll(newUUID()[:8], "-", ""), MetricStat: ms, ReturnData: true})
	}
	return p
}
