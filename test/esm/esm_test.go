package esm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyferry/keyferry/test/esm"
	"github.com/keyferry/keyferry/test/lambdaemu"
	"github.com/keyferry/keyferry/test/motoserver"
)

var creds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIAESMTEST", SecretAccessKey: "not-a-secret"}, nil
})

// TestMappingDeliversLikeLambda: a real SQS queue (moto_server), the real
// Lambda Invoke API (lambdaemu) and the mapping between them: every
// message reaches the function as an aws:sqs record; a record the function
// reports in batchItemFailures and a batch whose invocation failed come
// back after the visibility timeout; no more than MaximumConcurrency
// invocations run at once; nothing is left on the queue.
func TestMappingDeliversLikeLambda(t *testing.T) {
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Close()
	sq := sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL()), Credentials: creds})
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs"),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameVisibilityTimeout): "1"}})
	if err != nil {
		t.Fatal(err)
	}
	lam := lambdaemu.New(lambdaemu.Options{})
	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		inFlight atomic.Int32
		maxSeen  atomic.Int32
		badEvent atomic.Value
	)
	lam.Register("worker", lambdaemu.Typed(func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		var resp events.SQSEventResponse
		for _, r := range ev.Records {
			if r.EventSource != "aws:sqs" || r.MessageId == "" || r.ReceiptHandle == "" || r.Attributes["ApproximateReceiveCount"] == "" {
				badEvent.Store(fmt.Sprintf("%+v", r))
			}
			mu.Lock()
			seen[r.Body]++
			count := seen[r.Body]
			mu.Unlock()
			switch {
			case r.Body == "crash" && count == 1:
				return resp, errors.New("injected function error")
			case r.Body == "partial" && count == 1:
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}))
	if err := lam.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer lam.Close()
	lc := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(lam.URL()), Credentials: creds})

	bodies := []string{"crash", "partial"}
	for i := range 12 {
		bodies = append(bodies, fmt.Sprintf("job-%d", i))
	}
	for _, b := range bodies {
		if _, err := sq.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := esm.Start(ctx, esm.Mapping{QueueURL: aws.ToString(q.QueueUrl), QueueARN: "arn:aws:sqs:us-east-1:123456789012:jobs", Region: "us-east-1",
		Function: "worker", BatchSize: 1, MaximumConcurrency: 3, ReportBatchItemFailures: true}, esm.Clients{SQS: sq, Lambda: lc})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.Stats().Deleted < int64(len(bodies)) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	p.Close()
	st := p.Stats()
	if st.Deleted != int64(len(bodies)) {
		t.Fatalf("%d of %d messages settled: %+v", st.Deleted, len(bodies), st)
	}
	if v := badEvent.Load(); v != nil {
		t.Fatalf("a record is not what Lambda delivers: %v", v)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bodies {
		want := 1
		if b == "crash" || b == "partial" {
			want = 2
		}
		if seen[b] != want {
			t.Errorf("%s delivered %d times, want %d", b, seen[b], want)
		}
	}
	if m := maxSeen.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d invocations at once, want 2..3 (MaximumConcurrency 3)", m)
	}
	if st.Failed != 1 || st.Retried != 2 {
		t.Errorf("stats %+v: want 1 failed invocation and 2 records retried", st)
	}
	left, _ := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl})
	if len(left.Messages) != 0 {
		t.Fatalf("%d messages left on the queue", len(left.Messages))
	}
}

// TestEventRoundTrip: the event the mapping builds is the JSON Lambda
// sends (aws-lambda-go decodes it back to the same records).
func TestEventRoundTrip(t *testing.T) {
	ev := esm.Event(esm.Mapping{QueueARN: "arn:aws:sqs:us-east-1:1:q", Region: "us-east-1"}, []sqstypes.Message{{
		MessageId: aws.String("m1"), ReceiptHandle: aws.String("r1"), Body: aws.String(`{"job_id":"j"}`), MD5OfBody: aws.String("x"),
		Attributes: map[string]string{"ApproximateReceiveCount": "2"},
	}})
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back events.SQSEvent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r := back.Records[0]
	if r.MessageId != "m1" || r.EventSource != "aws:sqs" || r.EventSourceARN != "arn:aws:sqs:us-east-1:1:q" || r.Attributes["ApproximateReceiveCount"] != "2" || r.Body != `{"job_id":"j"}` {
		t.Fatalf("round trip: %+v", r)
	}
	var raw map[string][]map[string]any
	_ = json.Unmarshal(b, &raw)
	for _, k := range []string{"messageId", "receiptHandle", "body", "attributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"} {
		if _, ok := raw["Records"][0][k]; !ok {
			t.Errorf("record has no %q member", k)
		}
	}
}
