package engine

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/keyferry/keyferry/functions/store"
)

// maxResumePerHello bounds the jobs one hello runs on, so the agent-message
// Lambda stays inside API Gateway's 29 s integration timeout; the rest wait
// for the next hello or the sweeper.
const maxResumePerHello = 16

// resumeForAgent runs on, when an agent of pool says hello, the jobs that
// were waiting for one: jobs of the pool's groups still in KEY_READY (no
// agent was live to choose wrapping parameters), and REQUESTED jobs whose
// wrap_request went to this agent before this connection and that its hello
// no longer lists as pending (the request died with the agent process).
// Without this a returning agent waits for the sweeper (the job timeout).
func (e *Engine) resumeForAgent(ctx context.Context, c *store.Connection, pending []string) (int, error) {
	inPool := func(j *store.Job) bool {
		g, err := e.group(j.Group)
		return err == nil && g.HSMPool == c.Pool
	}
	far := e.now().Add(365 * 24 * time.Hour)
	var errs []error
	n := 0
	waiting, err := e.Store.JobsInState(ctx, store.StateKeyReady, far)
	if err != nil {
		return 0, err
	}
	lost, err := e.Store.JobsInState(ctx, store.StateRequested, far)
	if err != nil {
		return 0, err
	}
	for _, j := range lost {
		if n >= maxResumePerHello {
			break
		}
		if !inPool(j) || j.AgentID != c.AgentID || slices.Contains(pending, j.RequestID) || !j.RequestedAt.Before(c.ConnectedAt) {
			continue
		}
		if err := e.advance(ctx, j, store.StateKeyReady, "agent "+c.AgentID+" reconnected without request "+j.RequestID+": ask again"); err != nil {
			if !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
			}
			continue
		}
		waiting = append(waiting, j)
	}
	for _, j := range waiting {
		if n >= maxResumePerHello {
			break
		}
		if !inPool(j) {
			continue
		}
		n++
		if err := e.runOrHandOn(ctx, j); err != nil && !errors.Is(err, ErrNoAgent) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
