package stack

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/shared/groups"
)

// MetricsNamespace is where the functions publish Embedded Metric Format metrics.
const MetricsNamespace = metrics.Namespace

// search sums a per-group EMF metric over every group (dashboards only; alarms
// cannot use SEARCH, so they are per group).
func search(name, stat, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("SUM(SEARCH('{" + MetricsNamespace + ",Group} MetricName=\"" + name + "\"', '" + stat + "', 300))"),
		Label:      jsii.String(label),
		Period:     awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

// dashboardPerGroupMax is the most groups whose metrics the dashboard
// graphs one by one.
const dashboardPerGroupMax = 40

// searchEach graphs a per-group EMF metric for every group, one series each.
func searchEach(name, stat, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("SEARCH('{" + MetricsNamespace + ",Group} MetricName=\"" + name + "\"', '" + stat + "', 300)"),
		Label:      jsii.String(label),
		Period:     awscdk.Duration_Minutes(jsii.Number(5)),
	})
}

func metric(name, stat string, dims map[string]*string) awscloudwatch.Metric {
	p := &awscloudwatch.MetricProps{
		Namespace: jsii.String(MetricsNamespace), MetricName: jsii.String(name),
		Statistic: jsii.String(stat), Period: awscdk.Duration_Minutes(jsii.Number(5)),
	}
	if dims != nil {
		p.DimensionsMap = &dims
	}
	return awscloudwatch.NewMetric(p)
}

// newOperations builds the dashboard and the operational alarms.
func newOperations(st awscdk.Stack, cp *ControlPlane, gs []groups.Group) {
	succeeded := search(metrics.RotationsSucceeded, "Sum", "succeeded")
	failed := search(metrics.RotationsFailed, "Sum", "failed")
	agents := metric(metrics.AgentsConnected, "Minimum", nil)
	refusals := search(metrics.WrapRefusals, "Sum", "refused by agents")
	var age, expiry, latency []awscloudwatch.IMetric
	for _, g := range gs {
		d := map[string]*string{"Group": jsii.String(g.Name)}
		age = append(age, metric(metrics.KeyAge, "Maximum", d))
		latency = append(latency, metric(metrics.RotationLatency, "p99", d))
		if g.MaterialExpires() {
			expiry = append(expiry, metric(metrics.MaterialSecondsToExpiry, "Minimum", d))
		}
	}
	// A graph lists a few dozen metrics well (and CloudWatch bounds a
	// dashboard's body): a larger fleet graphs each series by SEARCH.
	if len(gs) > dashboardPerGroupMax {
		age = []awscloudwatch.IMetric{searchEach(metrics.KeyAge, "Maximum", "key age")}
		latency = []awscloudwatch.IMetric{searchEach(metrics.RotationLatency, "p99", "latency")}
		expiry = []awscloudwatch.IMetric{searchEach(metrics.MaterialSecondsToExpiry, "Minimum", "to expiry")}
	}
	graph := func(title string, left ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8)})
	}
	awscloudwatch.NewDashboard(st, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String("keyferry-" + *awscdk.Aws_REGION()),
		Widgets: &[]*[]awscloudwatch.IWidget{
			{graph("Rotations by result", succeeded, failed), graph("Rotation latency (p99 ms)", latency...), graph("Agents connected", agents)},
			{graph("Key age per group (s)", age...), graph("Seconds to material expiry", expiry...), graph("Wrap refusals", refusals)},
		},
	})

	alarm := func(id, desc string, m awscloudwatch.IMetric, threshold float64, cmp awscloudwatch.ComparisonOperator, missing awscloudwatch.TreatMissingData) {
		awscloudwatch.NewAlarm(st, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String(desc),
			Metric:             m,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: cmp,
			TreatMissingData:   missing,
		})
	}
	alarm("NoAgentConnected", "keyferry: no on-premises agent connected", agents, 1, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, awscloudwatch.TreatMissingData_BREACHING)
	alarm("TriggerDLQDepth", "keyferry: triggers are landing in the dead-letter queue", cp.DLQ.MetricApproximateNumberOfMessagesVisible(nil), 0,
		awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD, awscloudwatch.TreatMissingData_NOT_BREACHING)
	for _, sc := range cp.groupScopes {
		newGroupAlarms(sc.stack, sc.groups)
	}
}

// newGroupAlarms makes each group's alarms in scope st: a failed rotation,
// and material expiring within the group's re-import margin.
func newGroupAlarms(st awscdk.Stack, gs []groups.Group) {
	alarm := func(id, desc string, m awscloudwatch.IMetric, threshold float64, cmp awscloudwatch.ComparisonOperator) {
		awscloudwatch.NewAlarm(st, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmDescription: jsii.String(desc), Metric: m, Threshold: jsii.Number(threshold), EvaluationPeriods: jsii.Number(1),
			ComparisonOperator: cmp, TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
	}
	for _, g := range gs {
		alarm("RotationFailures-"+g.Name, "keyferry: a rotation job of group "+g.Name+" failed",
			metric(metrics.RotationsFailed, "Sum", map[string]*string{"Group": jsii.String(g.Name)}), 0,
			awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD)
	}
	for _, g := range gs {
		if !g.MaterialExpires() {
			continue
		}
		margin := time.Duration(g.ReimportMargin).Seconds()
		alarm("MaterialExpiring-"+g.Name, "keyferry: material of group "+g.Name+" expires within its re-import margin",
			metric(metrics.MaterialSecondsToExpiry, "Minimum", map[string]*string{"Group": jsii.String(g.Name)}), margin,
			awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD)
	}
}

func newOutputs(st awscdk.Stack, cp *ControlPlane) {
	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(st, jsii.String(id), &awscdk.CfnOutputProps{Value: v, Description: jsii.String(desc)})
	}
	out("WebSocketURL", "agents dial this (tunnel.url in the agent config)", cp.stage.Url())
	out("ManagementEndpoint", "@connections endpoint the functions post to", cp.stageHTTPS)
	out("ControlPlaneSigningKeyArn", "KMS key that signs wrap_requests", cp.SigningKey.KeyArn())
	out("ControlPlanePublicKey", "DER public key (base64) the agent pins (control_plane_public_key)", cp.publicKey)
	out("TriggerDLQUrl", "dead-letter queue of schedules and alarm rules", cp.DLQ.QueueUrl())
}
