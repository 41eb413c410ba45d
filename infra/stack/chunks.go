package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/shared/groups"
)

// GroupsPerStack bounds the groups whose per-group resources (a schedule
// and up to two alarms each) one CloudFormation stack holds. CloudFormation
// refuses a stack of more than 500 resources, and the control plane itself
// takes about 130, so a fleet beyond GroupsPerStack puts its per-group
// resources in nested stacks of GroupsPerStack groups each (150 x 3 = 450).
const GroupsPerStack = 150

// groupScope is a stack holding the per-group resources of some groups.
type groupScope struct {
	stack  awscdk.Stack
	groups []groups.Group
}

// groupScopes is the control plane's own stack when gs fits beside it, else
// one nested stack per GroupsPerStack groups, in the order of gs (so a
// group keeps its nested stack while groups are appended).
func groupScopes(st awscdk.Stack, gs []groups.Group) []groupScope {
	if len(gs) <= GroupsPerStack {
		return []groupScope{{st, gs}}
	}
	var out []groupScope
	for i := 0; i < len(gs); i += GroupsPerStack {
		chunk := gs[i:min(i+GroupsPerStack, len(gs))]
		n := awscdk.NewNestedStack(st, jsii.String(fmt.Sprintf("Groups%d", i/GroupsPerStack)), &awscdk.NestedStackProps{
			Description: jsii.String(fmt.Sprintf("keyferry: schedules and alarms of groups %s .. %s", chunk[0].Name, chunk[len(chunk)-1].Name)),
		})
		out = append(out, groupScope{n, chunk})
	}
	return out
}

// groupCount is the number of groups of the stack's target.
func (cp *ControlPlane) groupCount() int {
	n := 0
	for _, sc := range cp.groupScopes {
		n += len(sc.groups)
	}
	return n
}

// newSchedulerRole is the one execution role every schedule of the stack
// (and its nested stacks) invokes its target as: the Lambda targets add
// their grants to it (lambda:InvokeFunction on the scheduled functions,
// sqs:SendMessage to the DLQ), identical grants collapse to one statement,
// and a fleet of any size stays one role and one policy.
func newSchedulerRole(st awscdk.Stack) awsiam.Role {
	return awsiam.NewRole(st, jsii.String("SchedulerRole"), &awsiam.RoleProps{
		Description: jsii.String("keyferry: EventBridge Scheduler invokes the rotate and keepalive functions"),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()}},
		}),
	})
}
