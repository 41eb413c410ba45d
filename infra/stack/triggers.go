package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsschedulertargets"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/shared/groups"
)

// AlarmPrefix starts the name of every alarm that may trigger a rotation.
const AlarmPrefix = "keyferry-"

// newTriggers wires every way a rotation starts: one EventBridge Scheduler
// schedule per group (in the group's scope: this stack or its nested
// stack), all invoking as one SchedulerRole, the keepalive and sweeper schedules, CloudWatch alarms
// (invoking the rotate function directly and through an EventBridge rule on
// "CloudWatch Alarm State Change"), and KMS key-material events.
func newTriggers(st awscdk.Stack, cp *ControlPlane) {
	for _, sc := range cp.groupScopes {
		newGroupSchedules(sc.stack, cp, sc.groups)
	}
	newFixedTriggers(st, cp)
}

// newGroupSchedules makes one schedule per group in scope st.
func newGroupSchedules(st awscdk.Stack, cp *ControlPlane, gs []groups.Group) {
	rotate := cp.Functions[FnRotate]
	for _, g := range gs {
		tz := g.ScheduleTimezone
		if tz == "" {
			tz = groups.DefaultTimezone
		}
		// A flexible window (default on) lets Scheduler spread each
		// invocation over the group's window, so groups created together
		// do not rotate together (and queue on the 1/s GetParametersForImport quota).
		window := awsscheduler.TimeWindow_Off()
		if w := g.FlexibleWindow(); w > 0 {
			window = awsscheduler.TimeWindow_Flexible(awscdk.Duration_Minutes(jsii.Number(w.Minutes())))
		}
		awsscheduler.NewSchedule(st, jsii.String("Schedule-"+g.Name), &awsscheduler.ScheduleProps{
			Description: jsii.String("keyferry rotation of group " + g.Name),
			Schedule:    awsscheduler.ScheduleExpression_Expression(jsii.String(g.Schedule), awscdk.TimeZone_Of(jsii.String(tz))),
			TimeWindow:  window,
			Target: awsschedulertargets.NewLambdaInvoke(rotate, &awsschedulertargets.ScheduleTargetBaseProps{
				Input:           awsscheduler.ScheduleTargetInput_FromObject(map[string]any{"group": g.Name, "trigger": "schedule"}),
				RetryAttempts:   jsii.Number(3),
				MaxEventAge:     awscdk.Duration_Hours(jsii.Number(1)),
				DeadLetterQueue: cp.DLQ,
				Role:            cp.SchedulerRole,
			}),
		})
	}
}

// newFixedTriggers: the keepalive and sweeper schedules, the alarm and KMS
// event rules.
func newFixedTriggers(st awscdk.Stack, cp *ControlPlane) {
	rotate := cp.Functions[FnRotate]
	for _, s := range []struct{ id, expr, task string }{
		{"Keepalive", "rate(1 hour)", "keepalive"},
		{"Sweeper", "rate(5 minutes)", "sweep"},
	} {
		awsscheduler.NewSchedule(st, jsii.String("Schedule-"+s.id), &awsscheduler.ScheduleProps{
			Description: jsii.String("keyferry " + s.task),
			Schedule:    awsscheduler.ScheduleExpression_Expression(jsii.String(s.expr), awscdk.TimeZone_ETC_UTC()),
			Target: awsschedulertargets.NewLambdaInvoke(cp.Functions[FnKeepalive], &awsschedulertargets.ScheduleTargetBaseProps{
				Input:           awsscheduler.ScheduleTargetInput_FromObject(map[string]any{"task": s.task}),
				RetryAttempts:   jsii.Number(2),
				DeadLetterQueue: cp.DLQ,
				Role:            cp.SchedulerRole,
			}),
		})
	}

	// Alarms invoke the rotate function directly (CloudWatch Lambda alarm action)...
	alarmArns := "arn:" + *awscdk.Aws_PARTITION() + ":cloudwatch:" + *awscdk.Aws_REGION() + ":" + *awscdk.Aws_ACCOUNT_ID() + ":alarm:" + AlarmPrefix + "*"
	rotate.AddPermission(jsii.String("AlarmsInvoke"), &awslambda.Permission{
		Principal: awsiam.NewServicePrincipal(jsii.String("lambda.alarms.cloudwatch.amazonaws.com"), nil),
		SourceArn: jsii.String(alarmArns), SourceAccount: awscdk.Aws_ACCOUNT_ID(),
	})
	// ...and through EventBridge (both deliver at least once; the engine is idempotent per trigger).
	awsevents.NewRule(st, jsii.String("AlarmStateChange"), &awsevents.RuleProps{
		Description: jsii.String("keyferry: CloudWatch alarms of key groups entering ALARM rotate the group"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.cloudwatch"),
			DetailType: jsii.Strings("CloudWatch Alarm State Change"),
			Detail: &map[string]any{
				"alarmName": []any{map[string]any{"prefix": AlarmPrefix}},
				"state":     map[string]any{"value": []any{"ALARM"}},
			},
		},
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(rotate, &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: cp.DLQ, RetryAttempts: jsii.Number(3),
		})},
	})
	awsevents.NewRule(st, jsii.String("KMSKeyMaterialEvents"), &awsevents.RuleProps{
		Description: jsii.String("keyferry: KMS material expiration, rotation and deletion events reach keepalive"),
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.kms"),
			DetailType: jsii.Strings("KMS Imported Key Material Expiration", "KMS CMK Rotation", "KMS CMK Deletion"),
		},
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(cp.Functions[FnKeepalive], &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: cp.DLQ, RetryAttempts: jsii.Number(3),
		})},
	})
}
