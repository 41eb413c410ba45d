// Package jobqueue hands rotation jobs from the function that touched them
// (a websocket route, a trigger, the sweeper) to the worker function,
// through an SQS queue that the worker consumes with a Lambda event source
// mapping (its maximum concurrency bounds the workers account-wide).
//
// A message names a job, never its data: the job's state lives in DynamoDB
// and the worker resumes it from its last recorded state. SQS delivers at
// least once and redelivers a message whose worker died before deleting it
// (after the queue's visibility timeout), so a worker killed mid-step
// resumes the job without waiting for the sweeper.
package jobqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// MaxDelay is SQS's largest per-message delay (DelaySeconds 900).
const MaxDelay = 15 * time.Minute

// WorkerMaxConcurrency bounds the worker instances the queue's event
// source mapping runs at once (infra sets it; the sandbox plays it). The
// KMS quotas are paced account-wide by the ledger whatever this is; it
// bounds Lambda and DynamoDB load.
const WorkerMaxConcurrency = 20

// WorkerTimeout is the worker function's timeout. The queue's visibility
// timeout is six times it (AWS's guidance for SQS event sources): a live
// worker's message never reappears; a killed worker's comes back.
const WorkerTimeout = 60 * time.Second

// maxJobID bounds a message's job id (job ids are short; anything longer is not ours).
const maxJobID = 256

// Message is the body of one queue message.
type Message struct {
	JobID string `json:"job_id"`
}

// ErrBadMessage: a body that is not a Message (the worker drops it: a
// redelivery would not make it valid).
var ErrBadMessage = errors.New("jobqueue: not a job message")

// Decode parses and checks a message body.
func Decode(body string) (Message, error) {
	var m Message
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return Message{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadMessage)
	}
	if m.JobID == "" || len(m.JobID) > maxJobID || !utf8.ValidString(m.JobID) || strings.ContainsAny(m.JobID, "\x00\r\n") {
		return Message{}, fmt.Errorf("%w: job_id %q is empty, too long or not printable", ErrBadMessage, m.JobID)
	}
	return m, nil
}

// sqsAPI is the SQS calls the queue makes.
type sqsAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

var _ sqsAPI = (*sqs.Client)(nil)

// Queue sends job messages.
type Queue struct {
	SQS sqsAPI
	URL string
}

// HandOn queues jobID for the worker, to be delivered after the given
// delay (rounded up to whole seconds, at most MaxDelay: a job paced out for
// longer is handed on again when it comes back).
func (q *Queue) HandOn(ctx context.Context, jobID string, after time.Duration) error {
	body, err := json.Marshal(Message{JobID: jobID})
	if err != nil {
		return err
	}
	delay := int32(0)
	if after > 0 {
		delay = int32(math.Ceil(min(after, MaxDelay).Seconds()))
	}
	if _, err := q.SQS.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(q.URL), MessageBody: aws.String(string(body)), DelaySeconds: delay,
	}); err != nil {
		return fmt.Errorf("jobqueue: SendMessage for job %s: %w", jobID, err)
	}
	return nil
}

// RetryAfter makes a received message whose job could not go on visible
// again after a backoff that grows with its receive count (1 s, 2 s, 4 s
// ... at most 60 s, jittered by the caller's clock), instead of the
// queue's visibility timeout (six minutes): a transient error delays the
// job by seconds. The message must still be reported as a batch item
// failure so that the event source mapping does not delete it.
func (q *Queue) RetryAfter(ctx context.Context, receiptHandle string, receiveCount int) error {
	backoff := time.Second << min(max(receiveCount-1, 0), 6)
	backoff = min(backoff, time.Minute)
	if _, err := q.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.URL), ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32(backoff.Seconds()),
	}); err != nil {
		return fmt.Errorf("jobqueue: ChangeMessageVisibility: %w", err)
	}
	return nil
}
