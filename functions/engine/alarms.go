package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// cloudWatchAPI is the slice of the CloudWatch client the engine uses to
// keep per-group alarms on the group's current key.
type cloudWatchAPI interface {
	PutMetricAlarm(ctx context.Context, in *cloudwatch.PutMetricAlarmInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricAlarmOutput, error)
	DeleteAlarms(ctx context.Context, in *cloudwatch.DeleteAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DeleteAlarmsOutput, error)
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

var _ cloudWatchAPI = (*cloudwatch.Client)(nil)

// generationReader is what the alarms' concern reads from the store: a
// group's generations (to find its current key).
type generationReader interface {
	Generations(ctx context.Context, group string) ([]*store.Generation, error)
}

// alarmReconciler is the alarms' concern: it keeps each group's CloudWatch
// alarms on the group's current key and maps alarm names back to groups.
// It holds CloudWatch and the store's generations only.
type alarmReconciler struct {
	common
	cw cloudWatchAPI
	// action is the alarms' action (the rotate function's ARN).
	action string
	gens   generationReader
}

// alarms is the Engine's alarms concern (CloudWatch and AlarmAction as
// they are set now).
func (e *Engine) alarms() *alarmReconciler {
	return &alarmReconciler{common: e.shared(), cw: e.CloudWatch, action: e.AlarmAction, gens: e.Store}
}

// AlarmPrefix starts every CloudWatch alarm name keyferry manages.
const AlarmPrefix = groups.AlarmPrefix

// MaterialExpiryAlarm is the alarm name (within a group) of the alarm on
// AWS/KMS SecondsUntilKeyMaterialExpiration of the group's current key.
const MaterialExpiryAlarm = groups.MaterialExpiryAlarm

// AlarmName is the CloudWatch alarm name of alarm a of group g:
// "keyferry-<group>-<alarm>". Rotate maps names back with AlarmOwner.
func AlarmName(group, alarm string) string { return groups.AlarmName(group, alarm) }

// Errors of alarm name mapping.
var (
	// ErrUnknownAlarm: the alarm name belongs to no group of the file.
	ErrUnknownAlarm = errors.New("engine: alarm belongs to no group")
	// ErrAmbiguousAlarm: the name is the alarm name of more than one
	// (group, alarm) pair (group and alarm names both contain hyphens, so
	// "keyferry-a-b-c" may be group a's "b-c" and group a-b's "c").
	ErrAmbiguousAlarm = errors.New("engine: alarm name is ambiguous")
)

// AlarmRef is what an alarm name maps to.
type AlarmRef struct {
	Group *groups.Group
	// Alarm is the group's alarm definition; nil for MaterialExpiry.
	Alarm *groups.Alarm
	// MaterialExpiry: the alarm watches SecondsUntilKeyMaterialExpiration
	// (firing means: re-import, not rotate).
	MaterialExpiry bool
}

// alarmRefs lists every alarm keyferry manages for the loaded file, by name.
func (a *alarmReconciler) alarmRefs() map[string][]AlarmRef {
	out := map[string][]AlarmRef{}
	if a.groups == nil {
		return out
	}
	for i := range a.groups.Groups {
		g := &a.groups.Groups[i]
		for k := range g.Alarms {
			n := AlarmName(g.Name, g.Alarms[k].Name)
			out[n] = append(out[n], AlarmRef{Group: g, Alarm: &g.Alarms[k]})
		}
		if g.MaterialExpires() {
			n := AlarmName(g.Name, MaterialExpiryAlarm)
			out[n] = append(out[n], AlarmRef{Group: g, MaterialExpiry: true})
		}
	}
	return out
}

// AlarmOwner maps a CloudWatch alarm name to its group and alarm: the full
// name AlarmName(group, alarm) first; a bare alarm name (an alarm created
// outside keyferry with the file's name) only when exactly one group has it.
func (a *alarmReconciler) AlarmOwner(name string) (AlarmRef, error) {
	refs := a.alarmRefs()
	switch m := refs[name]; len(m) {
	case 1:
		return m[0], nil
	case 0:
	default:
		return AlarmRef{}, fmt.Errorf("%w: %q names alarms of %d groups", ErrAmbiguousAlarm, name, len(m))
	}
	var bare []AlarmRef
	for _, rs := range refs {
		for _, r := range rs {
			if r.Alarm != nil && r.Alarm.Name == name {
				bare = append(bare, r)
			}
		}
	}
	switch len(bare) {
	case 1:
		return bare[0], nil
	case 0:
		return AlarmRef{}, fmt.Errorf("%w: %q", ErrUnknownAlarm, name)
	}
	return AlarmRef{}, fmt.Errorf("%w: bare name %q is an alarm of %d groups", ErrAmbiguousAlarm, name, len(bare))
}

// AlarmReport says what ReconcileAlarms did.
type AlarmReport struct {
	KeyARN    string   `json:"key_arn,omitempty"`
	Put       []string `json:"put,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
	Deleted   []string `json:"deleted,omitempty"`
}

// currentKey is the key ARN of the group's CURRENT generation ("" if none).
func (a *alarmReconciler) currentKey(ctx context.Context, g *groups.Group) (string, error) {
	gens, err := a.gens.Generations(ctx, g.Name)
	if err != nil {
		return "", err
	}
	for i := len(gens) - 1; i >= 0; i-- {
		if gens[i].State == store.GenCurrent {
			return gens[i].KeyARN, nil
		}
	}
	return "", nil
}

func keyIDOf(arn string) string {
	if _, id, ok := strings.Cut(arn, ":key/"); ok {
		return id
	}
	return arn
}

func missingData(comparison string) string {
	// No requests means no datapoint: that breaches "less than" alarms
	// (traffic stopped) and not "greater than" ones.
	if strings.HasPrefix(comparison, "LessThan") {
		return "breaching"
	}
	return "notBreaching"
}

// desiredAlarms builds the PutMetricAlarm inputs of group g on keyARN,
// keyed by alarm name. Each description carries a fingerprint of the
// input, so an unchanged alarm is recognised without a write.
func (a *alarmReconciler) desiredAlarms(g *groups.Group, keyARN string) map[string]*cloudwatch.PutMetricAlarmInput {
	out := map[string]*cloudwatch.PutMetricAlarmInput{}
	actions := []string{a.action}
	for k := range g.Alarms {
		al := &g.Alarms[k]
		in := &cloudwatch.PutMetricAlarmInput{
			AlarmName:          aws.String(AlarmName(g.Name, al.Name)),
			ActionsEnabled:     aws.Bool(true),
			AlarmActions:       actions,
			ComparisonOperator: cwtypes.ComparisonOperator(al.Comparison),
			EvaluationPeriods:  aws.Int32(int32(al.EvaluationPeriods)),
			TreatMissingData:   aws.String(missingData(al.Comparison)),
		}
		period := aws.Int32(int32(al.Period.Std().Seconds()))
		dims := []cwtypes.Dimension{
			{Name: aws.String("KeyArn"), Value: aws.String(keyARN)},
			{Name: aws.String("Operation"), Value: aws.String(al.Operation)},
		}
		switch al.Type {
		case groups.AlarmAnomaly:
			in.Metrics = []cwtypes.MetricDataQuery{
				{
					Id: aws.String("m1"), ReturnData: aws.Bool(true),
					MetricStat: &cwtypes.MetricStat{
						Metric: &cwtypes.Metric{Namespace: aws.String("AWS/KMS"), MetricName: aws.String("SuccessfulRequest"), Dimensions: dims},
						Period: period, Stat: aws.String("Sum"),
					},
				},
				{
					Id: aws.String("ad1"), ReturnData: aws.Bool(true),
					Expression: aws.String("ANOMALY_DETECTION_BAND(m1, " + strconv.FormatFloat(al.BandWidth, 'f', -1, 64) + ")"),
					Label:      aws.String(al.Operation + " expected band"),
				},
			}
			in.ThresholdMetricId = aws.String("ad1")
		default:
			in.Namespace, in.MetricName = aws.String("AWS/KMS"), aws.String("SuccessfulRequest")
			in.Dimensions = dims
			in.Statistic = cwtypes.StatisticSum
			in.Period = period
			in.Threshold = aws.Float64(al.Threshold)
		}
		out[aws.ToString(in.AlarmName)] = in
	}
	if g.MaterialExpires() {
		margin := g.ReimportMargin.Std()
		if margin <= 0 {
			margin = DefaultReimportMargin
		}
		in := &cloudwatch.PutMetricAlarmInput{
			AlarmName:          aws.String(AlarmName(g.Name, MaterialExpiryAlarm)),
			ActionsEnabled:     aws.Bool(true),
			AlarmActions:       actions,
			Namespace:          aws.String("AWS/KMS"),
			MetricName:         aws.String("SecondsUntilKeyMaterialExpiration"),
			Dimensions:         []cwtypes.Dimension{{Name: aws.String("KeyId"), Value: aws.String(keyIDOf(keyARN))}},
			Statistic:          cwtypes.StatisticMinimum,
			Period:             aws.Int32(300),
			EvaluationPeriods:  aws.Int32(1),
			Threshold:          aws.Float64(margin.Seconds()),
			ComparisonOperator: cwtypes.ComparisonOperatorLessThanThreshold,
			TreatMissingData:   aws.String("missing"),
		}
		out[aws.ToString(in.AlarmName)] = in
	}
	for name, in := range out {
		b, _ := json.Marshal(in)
		sum := sha256.Sum256(b)
		in.AlarmDescription = aws.String(fmt.Sprintf("%s%s: alarm %s on %s (managed by the keyferry engine; fingerprint %s)",
			descPrefix, g.Name, strings.TrimPrefix(name, AlarmPrefix+g.Name+"-"), keyARN, hex.EncodeToString(sum[:8])))
	}
	return out
}

// descPrefix starts the description of every alarm the engine manages;
// followed by the group name and ":", it marks the alarms a group owns.
const descPrefix = "keyferry group "

// enabled reports whether the engine manages alarms (a CloudWatch client
// and the rotate function ARN for their actions are configured).
func (a *alarmReconciler) enabled() bool { return a.cw != nil && a.action != "" }

// ReconcileAlarms makes the group's CloudWatch alarms match the key-group
// file on the group's CURRENT key: PutMetricAlarm for each alarm that is
// missing or differs (alias-swap gives every rotation a new key ARN),
// DeleteAlarms for alarms of the group no longer in the file. Names shared
// by two groups (ErrAmbiguousAlarm) are left alone and reported. A group
// without a current generation has nothing to watch yet.
func (a *alarmReconciler) ReconcileAlarms(ctx context.Context, group string) (*AlarmReport, error) {
	g, err := a.group(group)
	if err != nil {
		return nil, err
	}
	rep := &AlarmReport{}
	if !a.enabled() {
		return rep, nil
	}
	if rep.KeyARN, err = a.currentKey(ctx, g); err != nil || rep.KeyARN == "" {
		return rep, err
	}
	desired := a.desiredAlarms(g, rep.KeyARN)
	existing := map[string]cwtypes.MetricAlarm{}
	pages := cloudwatch.NewDescribeAlarmsPaginator(a.cw, &cloudwatch.DescribeAlarmsInput{
		AlarmNamePrefix: aws.String(AlarmName(g.Name, "")),
		AlarmTypes:      []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return rep, fmt.Errorf("cloudwatch DescribeAlarms %s*: %w", AlarmName(g.Name, ""), err)
		}
		for _, m := range page.MetricAlarms {
			existing[aws.ToString(m.AlarmName)] = m
		}
	}
	refs := a.alarmRefs()
	var errs []error
	names := make([]string, 0, len(desired))
	for n := range desired {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		in := desired[name]
		if len(refs[name]) > 1 {
			errs = append(errs, fmt.Errorf("%w: %q names alarms of %d groups; not managed", ErrAmbiguousAlarm, name, len(refs[name])))
			continue
		}
		if ex, ok := existing[name]; ok && aws.ToString(ex.AlarmDescription) == aws.ToString(in.AlarmDescription) {
			rep.Unchanged = append(rep.Unchanged, name)
			continue
		}
		if _, err := a.cw.PutMetricAlarm(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("cloudwatch PutMetricAlarm %s: %w", name, err))
			continue
		}
		rep.Put = append(rep.Put, name)
	}
	var stale []string
	for name, ex := range existing {
		if _, want := desired[name]; want || !strings.HasPrefix(aws.ToString(ex.AlarmDescription), descPrefix+g.Name+":") {
			continue // ours and wanted, or another group's (prefixes overlap) or not ours
		}
		stale = append(stale, name)
	}
	slices.Sort(stale)
	for len(stale) > 0 {
		batch := stale[:min(len(stale), 100)] // DeleteAlarms takes up to 100 names
		stale = stale[len(batch):]
		if _, err := a.cw.DeleteAlarms(ctx, &cloudwatch.DeleteAlarmsInput{AlarmNames: batch}); err != nil {
			errs = append(errs, fmt.Errorf("cloudwatch DeleteAlarms %v: %w", batch, err))
			continue
		}
		rep.Deleted = append(rep.Deleted, batch...)
	}
	if len(rep.Put)+len(rep.Deleted) > 0 {
		a.log().InfoContext(ctx, "alarms reconciled", "group", g.Name, "key", rep.KeyARN, "put", rep.Put, "deleted", rep.Deleted)
	}
	return rep, errors.Join(errs...)
}

// reconcileAfterSwitch keeps alarms on the key a finished job left current;
// a failure is logged (the sweeper's keepalive pass retries), never fails
// the job.
func (a *alarmReconciler) reconcileAfterSwitch(ctx context.Context, g *groups.Group, j *store.Job) {
	if !a.enabled() {
		return
	}
	if _, err := a.ReconcileAlarms(ctx, g.Name); err != nil {
		a.log().WarnContext(ctx, "alarm reconcile after switch failed; keepalive retries", "job", j.ID, "group", g.Name, "error", err.Error())
	}
}
