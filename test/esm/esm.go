// Package esm plays a Lambda event source mapping for an SQS queue on this
// machine: it long-polls the queue (moto_server's SQS, through the real
// service/sqs client) and invokes the function synchronously through the
// Lambda Invoke API (the real service/lambda client) with the SQS event
// Lambda builds (aws-lambda-go's events.SQSEvent), at most
// MaximumConcurrency invocations at once, BatchSize records each.
//
// As Lambda does: a batch whose invocation succeeded is deleted, except the
// records the function names in batchItemFailures when the mapping reports
// batch item failures; a batch whose invocation failed (a function error,
// a timeout, a throttle) stays on the queue and comes back after the
// queue's visibility timeout.
package esm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Mapping is one event source mapping (AWS::Lambda::EventSourceMapping).
type Mapping struct {
	QueueURL string
	QueueARN string
	Region   string
	// Function is the function name the Invoke API knows.
	Function string
	// BatchSize (default 10) and MaximumConcurrency (default 2, Lambda's minimum).
	BatchSize          int
	MaximumConcurrency int
	// ReportBatchItemFailures: FunctionResponseTypes has ReportBatchItemFailures.
	ReportBatchItemFailures bool
}

// Clients are the real AWS clients the mapping uses.
type Clients struct {
	SQS    *sqs.Client
	Lambda *lambda.Client
	Log    *slog.Logger
}

// Stats count what the mapping did.
type Stats struct {
	Invocations, Failed int64
	Deleted, Retried    int64
	MaxInFlight         int64
}

// Poller is a running mapping.
type Poller struct {
	m    Mapping
	c    Clients
	stop context.CancelFunc
	wg   sync.WaitGroup

	slots chan struct{} // one per invocation in flight

	invocations, failed, deleted, retried atomic.Int64
	inFlight, maxInFlight                 atomic.Int64
}

// Start begins polling; Close stops it and waits for the invocations in flight.
func Start(ctx context.Context, m Mapping, c Clients) (*Poller, error) {
	if m.QueueURL == "" || m.Function == "" {
		return nil, errors.New("esm: a mapping needs a queue URL and a function name")
	}
	if c.SQS == nil || c.Lambda == nil {
		return nil, errors.New("esm: a mapping needs SQS and Lambda clients")
	}
	if m.BatchSize <= 0 {
		m.BatchSize = 10
	}
	if m.MaximumConcurrency < 2 {
		m.MaximumConcurrency = 2
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	ctx, stop := context.WithCancel(ctx)
	p := &Poller{m: m, c: c, stop: stop, slots: make(chan struct{}, m.MaximumConcurrency)}
	// Like Lambda's pollers: a few long-polling receivers, each taking up
	// to ten messages and handing them on in batches, while the number of
	// invocations at once never exceeds MaximumConcurrency.
	for range min(m.MaximumConcurrency, maxPollers) {
		p.wg.Add(1)
		go p.poll(ctx)
	}
	return p, nil
}

// maxPollers is how many receivers run (each takes up to ten messages).
const maxPollers = 3

// emptyPollWait is how long a receiver waits after an empty short poll.
const emptyPollWait = 50 * time.Millisecond

// Close stops polling and waits for every invocation in flight.
func (p *Poller) Close() {
	p.stop()
	p.wg.Wait()
}

// Stats returns the counters so far.
func (p *Poller) Stats() Stats {
	return Stats{Invocations: p.invocations.Load(), Failed: p.failed.Load(), Deleted: p.deleted.Load(), Retried: p.retried.Load(), MaxInFlight: p.maxInFlight.Load()}
}

// poll is one receiver: it waits for a free invocation slot, receives up
// to ten messages, and invokes the function on them BatchSize at a time,
// each batch in a slot of its own.
func (p *Poller) poll(ctx context.Context) {
	defer p.wg.Done()
	for ctx.Err() == nil {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		out, err := p.c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(p.m.QueueURL),
			MaxNumberOfMessages: 10,
			// Short polls: the sandbox's SQS is a serialized moto_server
			// (test/motoserver), which a long poll would hold for its wait.
			WaitTimeSeconds:             0,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil || len(out.Messages) == 0 {
			<-p.slots
			if err != nil && ctx.Err() == nil {
				p.c.Log.WarnContext(ctx, "esm: ReceiveMessage", "queue", p.m.QueueURL, "error", err.Error())
				sleep(ctx, 200*time.Millisecond)
			} else {
				sleep(ctx, emptyPollWait)
			}
			continue
		}
		msgs := out.Messages
		for first := true; len(msgs) > 0; first = false {
			if !first {
				p.slots <- struct{}{} // the invocation keeps running even when closing
			}
			batch := msgs[:min(p.m.BatchSize, len(msgs))]
			msgs = msgs[len(batch):]
			p.wg.Add(1)
			go func() {
				defer func() { <-p.slots; p.wg.Done() }()
				p.handle(ctx, batch)
			}()
		}
	}
}

func (p *Poller) handle(ctx context.Context, msgs []sqstypes.Message) {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxInFlight.Load()
		if n <= m || p.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	ev := Event(p.m, msgs)
	payload, _ := json.Marshal(ev)
	p.invocations.Add(1)
	// The invocation runs to the function's own timeout even when the
	// mapping is being closed: Lambda does not cancel an invocation.
	out, err := p.c.Lambda.Invoke(context.WithoutCancel(ctx), &lambda.InvokeInput{
		FunctionName: aws.String(p.m.Function), InvocationType: lambdatypes.InvocationTypeRequestResponse, Payload: payload,
	})
	if err == nil && out.FunctionError != nil {
		err = fmt.Errorf("function error %s: %s", aws.ToString(out.FunctionError), string(out.Payload))
	}
	if err != nil {
		p.failed.Add(1)
		p.retried.Add(int64(len(msgs)))
		p.c.Log.WarnContext(ctx, "esm: invocation failed: the batch comes back after the visibility timeout", "function", p.m.Function, "records", len(msgs), "error", err.Error())
		return
	}
	keep := map[string]bool{}
	if p.m.ReportBatchItemFailures {
		var resp events.SQSEventResponse
		if len(out.Payload) > 0 && string(out.Payload) != "null" {
			if jerr := json.Unmarshal(out.Payload, &resp); jerr != nil {
				// Lambda treats an unparsable response as a complete failure.
				p.failed.Add(1)
				p.retried.Add(int64(len(msgs)))
				return
			}
		}
		for _, f := range resp.BatchItemFailures {
			keep[f.ItemIdentifier] = true
		}
	}
	for _, m := range msgs {
		if keep[aws.ToString(m.MessageId)] {
			p.retried.Add(1)
			continue
		}
		if _, err := p.c.SQS.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{QueueUrl: aws.String(p.m.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			p.c.Log.WarnContext(ctx, "esm: DeleteMessage", "error", err.Error())
			continue
		}
		p.deleted.Add(1)
	}
}

// Event is the SQS event Lambda delivers for msgs.
func Event(m Mapping, msgs []sqstypes.Message) events.SQSEvent {
	var ev events.SQSEvent
	for _, msg := range msgs {
		attrs := map[string]string{}
		for k, v := range msg.Attributes {
			attrs[k] = v
		}
		if _, ok := attrs["ApproximateReceiveCount"]; !ok {
			attrs["ApproximateReceiveCount"] = "1"
		}
		if _, ok := attrs["SentTimestamp"]; !ok {
			attrs["SentTimestamp"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
		}
		mattrs := map[string]events.SQSMessageAttribute{}
		for k, v := range msg.MessageAttributes {
			mattrs[k] = events.SQSMessageAttribute{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType)}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(msg.MessageId), ReceiptHandle: aws.ToString(msg.ReceiptHandle),
			Body: aws.ToString(msg.Body), Md5OfBody: aws.ToString(msg.MD5OfBody),
			Attributes: attrs, MessageAttributes: mattrs,
			EventSource: "aws:sqs", EventSourceARN: m.QueueARN, AWSRegion: m.Region,
		})
	}
	return ev
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
