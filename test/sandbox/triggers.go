package sandbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyferry/keyferry/test/cfntemplate"
	"github.com/keyferry/keyferry/test/triggers"
)

// TriggerOptions configures StartTriggers.
type TriggerOptions struct {
	// Scale runs the triggers' clock this many times real time (0: 1), so
	// retry back-offs and flexible windows pass quickly.
	Scale float64
	// Duplicate is the probability a delivered trigger arrives twice.
	Duplicate float64
}

// Triggers are the stack's triggers as AWS delivers them, from the
// template: the Scheduler's schedules, the event bus's rules, CloudWatch's
// alarm actions (moto's CloudWatch), all through the Lambda Invoke API.
type Triggers struct {
	Deliverer *triggers.Deliverer
	Scheduler *triggers.Scheduler
	Bus       *triggers.Bus
	Alarms    *triggers.Alarms
}

// StartTriggers reads the schedules, rules and permissions of tpl (the
// synthesized stack the sandbox runs), creates their dead-letter queue in
// moto's SQS and returns the triggers, delivering to the sandbox's Lambda
// Invoke API. Nothing fires until FireAll or Run.
func (s *Sandbox) StartTriggers(ctx context.Context, tpl *cfntemplate.Template, o TriggerOptions) (*Triggers, error) {
	if tpl == nil {
		return nil, errors.New("sandbox: triggers: no template")
	}
	if s.Endpoints.Lambda == "" || s.motoSvc == nil {
		return nil, errors.New("sandbox: triggers: the Lambda Invoke API and moto_server must be running")
	}
	// Scheduler invokes as each schedule's execution role (IAM decides
	// lambda:InvokeFunction from the role's policy); CloudWatch alarms and
	// EventBridge rules invoke as service principals under the function's
	// resource policy, which triggers.ResolvePermissions reads from the
	// template, so they use the sandbox's own key.
	roleCreds := func(role string) aws.CredentialsProvider {
		key, secret := s.roleCredentials("scheduler", role)
		return credentials.NewStaticCredentialsProvider(key, secret, "")
	}
	d, err := triggers.NewDeliverer(triggers.Options{LambdaEndpoint: s.Endpoints.Lambda, SQSEndpoint: s.motoSvc.URL(),
		Region: Region, Account: Account, Clock: triggers.NewClock(time.Now(), o.Scale), Duplicate: o.Duplicate, Log: s.Log,
		Credentials: credentials.NewStaticCredentialsProvider(CloudAccessKey, CloudSecretKey, ""), RoleCredentials: roleCreds})
	if err != nil {
		return nil, fmt.Errorf("sandbox: triggers: %w", err)
	}
	r := triggers.Resolver(tpl, Account, Region, nil)
	t := &Triggers{Deliverer: d}
	if t.Scheduler, err = triggers.NewScheduler(ctx, tpl, r, d, d.Clock().Now()); err != nil {
		return nil, fmt.Errorf("sandbox: triggers: %w", err)
	}
	if t.Bus, err = triggers.NewBus(ctx, tpl, r, d); err != nil {
		return nil, fmt.Errorf("sandbox: triggers: %w", err)
	}
	perms, err := triggers.ResolvePermissions(tpl, r)
	if err != nil {
		return nil, fmt.Errorf("sandbox: triggers: %w", err)
	}
	t.Alarms = triggers.NewAlarms(d, s.motoSvc.URL(), t.Bus, perms)
	return t, nil
}

// FireAll fires every enabled schedule's next due time now (the sandbox's
// "schedules fire" tick), each with its template Input, and returns the
// executions. A schedule whose delivery failed is dead-lettered as
// Scheduler would; its error is joined into the result.
func (t *Triggers) FireAll(ctx context.Context) ([]triggers.Execution, error) {
	var out []triggers.Execution
	var errs []error
	for _, sc := range t.Scheduler.Schedules {
		if sc.State != "ENABLED" {
			continue
		}
		ex, err := t.Scheduler.FireNext(ctx, sc, false)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ex.Err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", sc.LogicalID, ex.Err))
		}
		out = append(out, ex)
	}
	return out, errors.Join(errs...)
}
