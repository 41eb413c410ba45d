package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/jobqueue"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/dynamotest"
)

// jobQueue is a real SQS queue in moto_server (the same process that
// plays DynamoDB) with the given visibility timeout.
type jobQueue struct {
	t   *testing.T
	sqs *sqs.Client
	url string
}

func newJobQueue(t *testing.T, visibility time.Duration) *jobQueue {
	t.Helper()
	c := sqs.New(sqs.Options{Region: region, BaseEndpoint: aws.String(dynamotest.Endpoint()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})})
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{
		QueueName:  aws.String(fmt.Sprintf("jobs-%d", time.Now().UnixNano())),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameVisibilityTimeout): fmt.Sprint(int(visibility.Seconds()))},
	})
	if err != nil {
		t.Fatalf("create job queue: %v", err)
	}
	return &jobQueue{t: t, sqs: c, url: aws.ToString(out.QueueUrl)}
}

func (q *jobQueue) handoff() *jobqueue.Queue { return &jobqueue.Queue{SQS: q.sqs, URL: q.url} }

// receive waits up to wait for one message and returns its job id and
// receipt handle ("" if none came).
func (q *jobQueue) receive(wait time.Duration) (jobID, receipt string) {
	q.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		out, err := q.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), MaxNumberOfMessages: 1})
		if err != nil {
			q.t.Fatal(err)
		}
		if len(out.Messages) == 1 {
			m, err := jobqueue.Decode(aws.ToString(out.Messages[0].Body))
			if err != nil {
				q.t.Fatal(err)
			}
			return m.JobID, aws.ToString(out.Messages[0].ReceiptHandle)
		}
		if time.Now().After(deadline) {
			return "", ""
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (q *jobQueue) done(receipt string) {
	q.t.Helper()
	if _, err := q.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: aws.String(receipt)}); err != nil {
		q.t.Fatal(err)
	}
}

// work plays the event source mapping: it takes the next message for
// jobID, runs the worker on it, and deletes it if the worker succeeded.
func (h *harness) work(q *jobQueue, jobID string) error {
	h.t.Helper()
	got, receipt := q.receive(5 * time.Second)
	if got != jobID {
		h.t.Fatalf("job queue: got message for %q, want %q", got, jobID)
	}
	if err := h.eng.Work(h.ctx, got); err != nil {
		return err
	}
	q.done(receipt)
	return nil
}

// TestWebsocketRouteHandsJobOn: with a job queue, the agent-message route
// only verifies and records the wrap_result and queues the job: no KMS
// import, rotation or alias call runs inside the websocket integration
// (before, the route ran the whole rest of the job, RotateKeyOnDemand and
// its wait included, against API Gateway's 29 s timeout). A trigger and a
// hello likewise hand their jobs on; the worker runs them to the end.
func TestWebsocketRouteHandsJobOn(t *testing.T) {
	for _, mode := range []string{"in-place", "alias-swap"} {
		t.Run(mode, func(t *testing.T) {
			g := uniq("handoff")
			h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: %s\n    alias: alias/%s\n", g, mode, g))
			q := newJobQueue(t, 30*time.Second)
			h.eng.Handoff = q.handoff()

			before := emu.Stats().Requests
			j, outcome, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "handoff-" + g})
			if err != nil || outcome != store.Started {
				t.Fatalf("start: %v %s", err, outcome)
			}
			if j := h.job(j.ID); j.State != store.StatePending {
				t.Fatalf("trigger ran the job to %s inside its invocation, want it queued in %s", j.State, store.StatePending)
			}
			if after := emu.Stats().Requests; after["CreateKey"] != before["CreateKey"] || after["GetParametersForImport"] != before["GetParametersForImport"] {
				t.Fatalf("the trigger called KMS: %v -> %v", before, after)
			}
			if err := h.work(q, j.ID); err != nil {
				t.Fatalf("worker: %v", err)
			}
			h.requireState(h.job(j.ID), store.StateRequested)

			// The route: verify, record, hand on.
			msgs := h.loop.Take()
			if len(msgs) != 1 {
				t.Fatalf("%d wrap_requests posted, want 1", len(msgs))
			}
			res, err := h.peer.Answer(h.ctx, msgs[0].Data)
			if err != nil {
				t.Fatal(err)
			}
			env, err := protocol.Decode(res)
			if err != nil {
				t.Fatal(err)
			}
			before = emu.Stats().Requests
			start := time.Now()
			if _, err := h.eng.HandleWrapResult(h.ctx, msgs[0].ConnectionID, env); err != nil {
				t.Fatalf("wrap_result: %v", err)
			}
			took := time.Since(start)
			after := emu.Stats().Requests
			for _, op := range []string{"ImportKeyMaterial", "RotateKeyOnDemand", "UpdateAlias", "CreateAlias", "Encrypt", "Decrypt"} {
				if after[op] != before[op] {
					t.Errorf("the websocket route called kms:%s (%d -> %d)", op, before[op], after[op])
				}
			}
			h.requireState(h.job(j.ID), store.StateResult)
			t.Logf("route answered in %s", took)

			if err := h.work(q, j.ID); err != nil {
				t.Fatalf("worker: %v", err)
			}
			h.requireState(h.job(j.ID), store.StateSucceeded)
			if id, _ := q.receive(0); id != "" {
				t.Fatalf("a message for job %s left on the queue", id)
			}
		})
	}
}
