package triggers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// Resolver returns a resolver for the trigger resources of t: every
// function's Arn (arn:aws:lambda:REGION:ACCOUNT:function:NAME, NAME its
// FunctionName or logical id), every queue's Arn and QueueName, every
// rule's Arn, plus extra (which wins).
func Resolver(t *cfntemplate.Template, account, region string, extra map[string]any) *cfntemplate.Resolver {
	refs := cfntemplate.Pseudo(account, region)
	attrs := map[string]any{}
	for id, r := range t.Resources {
		name, _ := r.Properties["FunctionName"].(string)
		switch r.Type {
		case cfntemplate.TypeFunction:
			if name == "" {
				name = id
			}
			refs[id] = name
			attrs[id+".Arn"] = fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, name)
		case cfntemplate.TypeQueue:
			q, _ := r.Properties["QueueName"].(string)
			if q == "" {
				q = id
			}
			attrs[id+".Arn"] = fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, account, q)
			attrs[id+".QueueName"] = q
			refs[id] = fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", region, account, q)
		case cfntemplate.TypeEventsRule:
			attrs[id+".Arn"] = fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", region, account, id)
			refs[id] = id
		}
	}
	for k, v := range extra {
		if strings.Contains(k, ".") {
			attrs[k] = v
		} else {
			refs[k] = v
		}
	}
	return &cfntemplate.Resolver{Refs: refs, Attrs: attrs}
}

// queueURL makes (idempotently, as SQS CreateQueue is) the queue an SQS
// ARN names and returns its URL.
func (d *Deliverer) queueURL(ctx context.Context, arn string) (string, error) {
	if d.sqs == nil {
		return "", errors.New("triggers: a dead-letter queue is configured but no SQS endpoint")
	}
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[2] != "sqs" || parts[5] == "" {
		return "", fmt.Errorf("triggers: %q is not an SQS queue ARN", arn)
	}
	out, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(parts[5])})
	if err != nil {
		return "", fmt.Errorf("triggers: dead-letter queue %s: %w", parts[5], err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// Schedule is one template schedule, resolved and parsed.
type Schedule struct {
	cfntemplate.Schedule
	// ARN is arn:aws:scheduler:REGION:ACCOUNT:schedule/default/NAME.
	ARN       string
	TargetARN string
	DLQURL    string
	Expr      *Expression
	// Start anchors rate() schedules (CloudFormation creation time).
	Start time.Time

	mu   sync.Mutex
	last time.Time // scheduled time of the last firing
}

// Scheduler fires the template's schedules (EventBridge Scheduler).
type Scheduler struct {
	d         *Deliverer
	Schedules []*Schedule
}

// Scheduler's retry defaults (RetryPolicy fields the template omits) and
// back-off between retries (Scheduler retries with exponential back-off
// and jitter; these are the sandbox's stand-in, on the Clock).
const (
	SchedulerDefaultRetries = 185
	SchedulerDefaultMaxAge  = 24 * time.Hour
	schedulerFirstBackoff   = 1 * time.Second
	schedulerMaxBackoff     = 5 * time.Minute
)

// NewScheduler reads t's schedules, resolves targets and dead-letter
// queues with r (creating each queue in SQS) and anchors rate schedules at
// start. A schedule that cannot be read is an error naming it.
func NewScheduler(ctx context.Context, t *cfntemplate.Template, r *cfntemplate.Resolver, d *Deliverer, start time.Time) (*Scheduler, error) {
	ss, err := t.Schedules()
	if err != nil {
		return nil, err
	}
	s := &Scheduler{d: d}
	for _, cs := range ss {
		sc := &Schedule{Schedule: cs, Start: start}
		name := cs.Name
		if name == "" {
			name = cs.LogicalID
		}
		sc.ARN = fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/default/%s", d.opts.Region, d.opts.Account, name)
		if sc.Expr, err = ParseExpression(cs.Expression, cs.Timezone); err != nil {
			return nil, fmt.Errorf("triggers: schedule %s: %w", cs.LogicalID, err)
		}
		if sc.TargetARN, err = r.String(cs.TargetArn); err != nil {
			return nil, fmt.Errorf("triggers: schedule %s: target: %w", cs.LogicalID, err)
		}
		if cs.DLQArn != nil {
			arn, err := r.String(cs.DLQArn)
			if err != nil {
				return nil, fmt.Errorf("triggers: schedule %s: dead-letter queue: %w", cs.LogicalID, err)
			}
			if sc.DLQURL, err = d.queueURL(ctx, arn); err != nil {
				return nil, fmt.Errorf("triggers: schedule %s: %w", cs.LogicalID, err)
			}
		}
		s.Schedules = append(s.Schedules, sc)
	}
	return s, nil
}

// Schedule returns a schedule by logical id or name.
func (s *Scheduler) Schedule(id string) (*Schedule, error) {
	for _, sc := range s.Schedules {
		if sc.LogicalID == id || (sc.Name != "" && sc.Name == id) {
			return sc, nil
		}
	}
	return nil, fmt.Errorf("triggers: no schedule %q in the template", id)
}

// Due is the next scheduled time of sc after its last firing (or after
// the clock's now, for the first): zero if it never fires again.
func (sc *Schedule) Due(now time.Time) time.Time {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	after := sc.last
	if after.IsZero() {
		after = now
	}
	return sc.Expr.Next(sc.Start, after)
}

// Execution is one firing of a schedule.
type Execution struct {
	Schedule      string
	ExecutionID   string
	ScheduledTime time.Time
	// WindowDelay is the flexible window's random delay (0 when OFF).
	WindowDelay time.Duration
	Delivery
}

// FireNext fires sc's next due time now (not waiting for it): the
// flexible-window delay is drawn (and slept on the clock only if wait),
// then the target is invoked with the exact Input, retried per the retry
// policy, and dead-lettered when it gives up.
func (s *Scheduler) FireNext(ctx context.Context, sc *Schedule, wait bool) (Execution, error) {
	due := sc.Due(s.d.opts.Clock.Now())
	if due.IsZero() {
		return Execution{}, fmt.Errorf("triggers: schedule %s fires no more", sc.LogicalID)
	}
	sc.mu.Lock()
	sc.last = due
	sc.mu.Unlock()
	return s.fire(ctx, sc, due, wait), nil
}

func (s *Scheduler) fire(ctx context.Context, sc *Schedule, due time.Time, wait bool) Execution {
	ex := Execution{Schedule: sc.LogicalID, ExecutionID: newUUID(), ScheduledTime: due}
	if sc.WindowMode == "FLEXIBLE" && sc.WindowMinutes > 0 {
		ex.WindowDelay = time.Duration(s.d.float() * float64(time.Duration(sc.WindowMinutes)*time.Minute)).Truncate(time.Second)
		if wait {
			s.d.opts.Clock.Sleep(ctx, ex.WindowDelay)
		}
	}
	payload := []byte(sc.Input)
	if !sc.HasInput {
		payload = []byte("{}")
	}
	plan := retryPlan{maxRetries: sc.Retry.MaximumRetryAttempts, maxAge: time.Duration(sc.Retry.MaximumEventAgeInSeconds) * time.Second, backoff: expBackoff}
	if plan.maxRetries < 0 {
		plan.maxRetries = SchedulerDefaultRetries
	}
	if sc.Retry.MaximumEventAgeInSeconds < 0 {
		plan.maxAge = SchedulerDefaultMaxAge
	}
	// The event's age counts from its (windowed) due time, or from now when
	// fired ahead of it (FireNext).
	eventTime := due.Add(ex.WindowDelay)
	if now := s.d.opts.Clock.Now(); now.Before(eventTime) {
		eventTime = now
	}
	ex.Delivery = s.d.deliver(ctx, sc.TargetARN, payload, eventTime, plan, sc.DLQURL, func(e *InvokeError, retries int) map[string]string {
		return map[string]string{
			"ERROR_CODE":     e.Code,
			"ERROR_MESSAGE":  e.Message,
			"EXECUTION_ID":   ex.ExecutionID,
			"RETRY_ATTEMPTS": strconv.Itoa(retries),
			"SCHEDULE_ARN":   sc.ARN,
			"TARGET_ARN":     sc.TargetARN,
		}
	}, s.roleCredentials(sc))
	return ex
}

// roleCredentials are the credentials of sc's execution role (Scheduler
// assumes it to invoke the target), or nil for the Deliverer's own.
func (s *Scheduler) roleCredentials(sc *Schedule) aws.CredentialsProvider {
	if s.d.opts.RoleCredentials == nil || sc.RoleLogicalID == "" {
		return nil
	}
	return s.d.opts.RoleCredentials(sc.RoleLogicalID)
}

func expBackoff(n int) time.Duration {
	d := schedulerFirstBackoff << min(n-1, 20)
	return min(d, schedulerMaxBackoff)
}

// Run fires every enabled schedule at its due times on the clock until ctx
// ends; each execution is passed to onFire (may be nil).
func (s *Scheduler) Run(ctx context.Context, onFire func(Execution)) {
	var wg sync.WaitGroup
	for _, sc := range s.Schedules {
		if sc.State != "ENABLED" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due := sc.Due(s.d.opts.Clock.Now())
				if due.IsZero() {
					return
				}
				if s.d.opts.Clock.Sleep(ctx, due.Sub(s.d.opts.Clock.Now())) != nil {
					return
				}
				sc.mu.Lock()
				sc.last = due
				sc.mu.Unlock()
				// Each firing is independent (a slow target does not hold the next).
				wg.Add(1)
				go func() {
					defer wg.Done()
					ex := s.fire(ctx, sc, due, true)
					if onFire != nil {
						onFire(ex)
					}
				}()
			}
		}()
	}
	wg.Wait()
}
