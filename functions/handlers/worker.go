package handlers

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyferry/keyferry/functions/jobqueue"
)

// Work is the worker function: an SQS event source mapping delivers job
// messages (functions/jobqueue) and each job runs on from its last recorded
// state. A message whose job could not go on (a transient error) is
// reported in BatchItemFailures, so SQS delivers it again after the
// backoff (jobqueue.Queue.RetryAfter; else the queue's visibility
// timeout); one that is not a job message is dropped
// with a log line (a redelivery would not make it valid).
func (d *Deps) Work(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		log := d.log().With("message", rec.MessageId)
		m, err := jobqueue.Decode(rec.Body)
		if err != nil {
			log.WarnContext(ctx, "job queue message dropped", "error", err.Error())
			continue
		}
		if err := d.Engine.Work(ctx, m.JobID); err != nil {
			log.WarnContext(ctx, "job did not go on: the queue delivers it again", "job", m.JobID, "error", err.Error())
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			if d.Queue != nil {
				n, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
				if verr := d.Queue.RetryAfter(ctx, rec.ReceiptHandle, n); verr != nil {
					log.WarnContext(ctx, "retry backoff not set: the queue's visibility timeout applies", "error", verr.Error())
				}
			}
			if errors.Is(err, context.DeadlineExceeded) {
				// Out of time: the remaining records go back too.
				continue
			}
		}
	}
	return resp, nil
}
