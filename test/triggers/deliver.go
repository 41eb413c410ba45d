package triggers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Clock is the time the triggers run on. Accelerated runs Scale times
// faster than the wall clock from Origin (Scale 1: real time), so a test
// or the sandbox can live through hours of schedules and retry back-offs
// in seconds.
type Clock struct {
	Origin time.Time
	Scale  float64
	start  time.Time
}

// NewClock starts a clock at origin running scale times real time (scale
// <= 0 means 1).
func NewClock(origin time.Time, scale float64) *Clock {
	if scale <= 0 {
		scale = 1
	}
	return &Clock{Origin: origin, Scale: scale, start: time.Now()}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	return c.Origin.Add(time.Duration(float64(time.Since(c.start)) * c.Scale))
}

// Sleep waits d of clock time (d/Scale of real time).
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(float64(d) / c.Scale))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Options configures a Deliverer.
type Options struct {
	// LambdaEndpoint is the Lambda Invoke API (lambdaemu); SQSEndpoint the
	// dead-letter queues' SQS (moto_server).
	LambdaEndpoint, SQSEndpoint string
	Region, Account             string
	Credentials                 aws.CredentialsProvider
	// RoleCredentials, when set, gives the credentials of an execution role
	// (a template logical id): Scheduler invokes a target as the schedule's
	// role. Nil (or a nil answer): Credentials.
	RoleCredentials func(roleLogicalID string) aws.CredentialsProvider
	Clock           *Clock
	// Duplicate is the probability (0..1) that a delivered invocation is
	// delivered a second time (at least once, sometimes twice).
	Duplicate float64
	// Seed makes the window delays and duplicates reproducible (0: random).
	Seed uint64
	Log  *slog.Logger
}

// Deliverer invokes Lambda targets asynchronously and sends dead-letter
// messages, as the AWS services that own the triggers do.
type Deliverer struct {
	opts   Options
	lambda *lambda.Client
	sqs    *sqs.Client

	mu  sync.Mutex
	rnd *mrand.Rand

	// Counters (read with Stats).
	invokes, failures, duplicates, deadLetters atomic.Int64
}

// Stats counts what a Deliverer did.
type Stats struct {
	Invokes     int64 // Invoke calls made, retries and duplicates included
	Failures    int64 // Invoke calls that failed
	Duplicates  int64 // second deliveries of a delivered invocation
	DeadLetters int64 // messages sent to a DLQ
}

// NewDeliverer builds the Lambda and SQS clients (SDK retries off: the
// owning service's retry policy is the only one, so attempts are exact).
func NewDeliverer(o Options) (*Deliverer, error) {
	if o.LambdaEndpoint == "" {
		return nil, errors.New("triggers: no Lambda endpoint")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "111122223333"
	}
	if o.Credentials == nil {
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIATRIGGERS", SecretAccessKey: "not-a-secret"}, nil
		})
	}
	if o.Clock == nil {
		o.Clock = NewClock(time.Now(), 1)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Duplicate < 0 || o.Duplicate > 1 {
		return nil, fmt.Errorf("triggers: duplicate probability %v is not in [0, 1]", o.Duplicate)
	}
	seed := o.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	d := &Deliverer{opts: o, rnd: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	d.lambda = lambda.New(lambda.Options{Region: o.Region, Credentials: o.Credentials, BaseEndpoint: aws.String(o.LambdaEndpoint), Retryer: aws.NopRetryer{}})
	if o.SQSEndpoint != "" {
		d.sqs = sqs.New(sqs.Options{Region: o.Region, Credentials: o.Credentials, BaseEndpoint: aws.String(o.SQSEndpoint), Retryer: aws.NopRetryer{}})
	}
	return d, nil
}

// Stats returns the counters.
func (d *Deliverer) Stats() Stats {
	return Stats{Invokes: d.invokes.Load(), Failures: d.failures.Load(), Duplicates: d.duplicates.Load(), DeadLetters: d.deadLetters.Load()}
}

// Clock is the deliverer's clock.
func (d *Deliverer) Clock() *Clock { return d.opts.Clock }

func (d *Deliverer) float() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rnd.Float64()
}

// InvokeError is a failed Invoke call: the API error code and message (or
// the transport error) and whether the owning service retries it.
type InvokeError struct {
	Code, Message string
	Status        int
	Retryable     bool
	Err           error
}

func (e *InvokeError) Error() string {
	return fmt.Sprintf("triggers: invoke: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}
func (e *InvokeError) Unwrap() error { return e.Err }

// invokeOnce makes one asynchronous Invoke (InvocationType Event) of
// function (a name or ARN) with payload exactly as given.
func (d *Deliverer) invokeOnce(ctx context.Context, function string, payload []byte, creds aws.CredentialsProvider) error {
	d.invokes.Add(1)
	var opts []func(*lambda.Options)
	if creds != nil {
		opts = append(opts, func(o *lambda.Options) { o.Credentials = creds })
	}
	_, err := d.lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload}, opts...)
	if err == nil {
		return nil
	}
	d.failures.Add(1)
	ie := &InvokeError{Code: "InternalServerError", Message: err.Error(), Retryable: true, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		ie.Status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		ie.Code, ie.Message = ae.ErrorCode(), ae.ErrorMessage()
	}
	// Throttling and server-side errors are retried; a client error
	// (function not found, access denied, bad payload) is not.
	ie.Retryable = ie.Status == 0 || ie.Status == http.StatusTooManyRequests || ie.Status >= 500
	return ie
}

// Delivery is the outcome of one trigger's delivery.
type Delivery struct {
	Target string
	// Attempts: Invoke calls until success or giving up (1 + retries).
	Attempts int
	// Delivered: successful invocations (2 when duplicated).
	Delivered int
	// DeadLettered: the message went to the DLQ (DLQMessageID); Err is the
	// last invoke error.
	DeadLettered bool
	DLQMessageID string
	Err          error
}

// retryPlan is a target's retry policy with the owner's defaults applied.
type retryPlan struct {
	maxRetries int
	maxAge     time.Duration
	// backoff is the delay before retry n (1-based).
	backoff func(n int) time.Duration
}

// deliver invokes target with payload, retrying retryable failures per
// plan from eventTime, and on giving up sends dlq (if a queue URL is set)
// with the attributes dlqAttrs(lastErr, retries) and body payload.
func (d *Deliverer) deliver(ctx context.Context, target string, payload []byte, eventTime time.Time, plan retryPlan,
	dlqURL string, dlqAttrs func(e *InvokeError, retries int) map[string]string, creds aws.CredentialsProvider) Delivery {
	out := Delivery{Target: target}
	for n := 0; ; n++ {
		out.Attempts++
		err := d.invokeOnce(ctx, target, payload, creds)
		if err == nil {
			out.Delivered = 1
			if d.opts.Duplicate > 0 && d.float() < d.opts.Duplicate {
				if d.invokeOnce(ctx, target, payload, creds) == nil {
					d.duplicates.Add(1)
					out.Delivered = 2
				}
			}
			return out
		}
		out.Err = err
		var ie *InvokeError
		errors.As(err, &ie)
		retry := ie != nil && ie.Retryable && n < plan.maxRetries
		if retry {
			wait := plan.backoff(n + 1)
			if plan.maxAge > 0 && d.opts.Clock.Now().Add(wait).Sub(eventTime) > plan.maxAge {
				retry = false
			}
			if retry {
				if d.opts.Clock.Sleep(ctx, wait) != nil {
					return out
				}
				continue
			}
		}
		d.opts.Log.WarnContext(ctx, "trigger not delivered", "target", target, "attempts", out.Attempts, "error", err.Error())
		if dlqURL != "" && d.sqs != nil {
			if ie == nil {
				ie = &InvokeError{Code: "InternalServerError", Message: err.Error()}
			}
			attrs := map[string]sqstypes.MessageAttributeValue{}
			for k, v := range dlqAttrs(ie, n) {
				attrs[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
			}
			res, serr := d.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(dlqURL), MessageBody: aws.String(string(payload)), MessageAttributes: attrs})
			if serr != nil {
				out.Err = fmt.Errorf("%w; and the dead-letter message failed: %w", err, serr)
				return out
			}
			d.deadLetters.Add(1)
			out.DeadLettered, out.DLQMessageID = true, aws.ToString(res.MessageId)
		}
		return out
	}
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
