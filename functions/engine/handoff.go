package engine

import (
	"context"
	"errors"
	"time"

	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
)

// Handoff queues a job for the worker function (functions/jobqueue).
type Handoff interface {
	HandOn(ctx context.Context, jobID string, after time.Duration) error
}

// HandOffMargin: a run with less time than this left before its
// invocation's deadline hands its job on rather than start another step
// (a step is a few KMS and DynamoDB calls, or a paced wait of up to
// pacer.DeadlineMargin less).
const HandOffMargin = 8 * time.Second

func nearDeadline(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < HandOffMargin
}

// runOrHandOn is what a route, trigger or hello does with a job it touched:
// with a Handoff the job goes to the worker, so the caller answers at once
// (a websocket route within milliseconds, never near API Gateway's 29 s);
// without one the job runs inline.
func (e *Engine) runOrHandOn(ctx context.Context, j *store.Job) error {
	if e.Handoff == nil {
		return e.Run(ctx, j)
	}
	if j.State.Terminal() || j.State == store.StateRequested {
		return nil
	}
	return e.Handoff.HandOn(ctx, j.ID, 0)
}

// Work is the worker function's step: it resumes the job from its last
// recorded state and runs it as far as this invocation can. A KMS call
// paced out past the invocation's deadline hands the job on again, to come
// back when the account's queue for that operation reaches it; a job
// waiting for an agent waits for its hello. Any other transient error is
// returned, and the queue delivers the message again after its visibility
// timeout.
func (e *Engine) Work(ctx context.Context, jobID string) error {
	j, err := e.Store.GetJob(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		e.log().WarnContext(ctx, "work on a job that does not exist: dropped", "job", jobID)
		return nil
	}
	if err != nil {
		return err
	}
	err = e.Run(ctx, j)
	var po *pacer.PacedOutError
	switch {
	case err == nil, errors.Is(err, ErrNoAgent):
		return nil
	case errors.As(err, &po) && e.Handoff != nil:
		after := time.Until(po.Next)
		e.log().InfoContext(ctx, "KMS quota queue is long: job handed on", "job", j.ID, "operation", po.Op, "after", after.String())
		return e.Handoff.HandOn(ctx, j.ID, after)
	}
	return err
}
