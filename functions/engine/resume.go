package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/keyferry/keyferry/functions/store"
)

// maxResumePerHello bounds the jobs one hello runs on inline (an engine
// without a Handoff), so the agent-message Lambda stays inside API
// Gateway's 29 s integration timeout; the rest wait for the next hello or
// the sweeper. With a Handoff a resumed job is one SendMessage, and every
// waiting job is handed on: a cap there left a rolling restart's jobs
// beyond the first 16 per hello waiting for the sweeper
// (TestRollingAgentRestartDuringFleetRotation in CI: 36 of 50 in PARAMS).
const maxResumePerHello = 16

// resumeCap is how many jobs one hello may resume.
func (b *agentBroker) resumeCap() int {
	if b.handsOff {
		return math.MaxInt
	}
	return maxResumePerHello
}

// resumeForAgent runs on, when an agent of pool says hello, the jobs that
// were waiting for one: jobs of the pool's groups still in KEY_READY (no
// agent was live to choose wrapping parameters), and REQUESTED jobs whose
// wrap_request went to this agent before this connection and that its hello
// no longer lists as pending (the request died with the agent process).
// Without this a returning agent waits for the sweeper (the job timeout).
func (b *agentBroker) resumeForAgent(ctx context.Context, c *store.Connection, pending []string) (int, error) {
	inPool := func(j *store.Job) bool {
		g, err := b.group(j.Group)
		return err == nil && g.HSMPool == c.Pool
	}
	far := b.now().Add(365 * 24 * time.Hour)
	var errs []error
	n := 0
	waiting, err := b.store.JobsInState(ctx, store.StateKeyReady, far)
	if err != nil {
		return 0, err
	}
	// PARAMS: handed over from a lost agent of the pool (pool.go) when no
	// other could take the request.
	handedOver, err := b.store.JobsInState(ctx, store.StateParams, far)
	if err != nil {
		return 0, err
	}
	waiting = append(waiting, handedOver...)
	lost, err := b.store.JobsInState(ctx, store.StateRequested, far)
	if err != nil {
		return 0, err
	}
	for _, j := range lost {
		if n >= b.resumeCap() {
			break
		}
		if !inPool(j) || j.AgentID != c.AgentID || slices.Contains(pending, j.RequestID) || !j.RequestedAt.Before(c.ConnectedAt) {
			continue
		}
		if err := b.jobs.advance(ctx, j, store.StateKeyReady, "agent "+c.AgentID+" reconnected without request "+j.RequestID+": ask again"); err != nil {
			if !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
			}
			continue
		}
		waiting = append(waiting, j)
	}
	for _, j := range waiting {
		if n >= b.resumeCap() {
			break
		}
		if !inPool(j) {
			continue
		}
		n++
		if err := b.jobs.runOrHandOn(ctx, j); err != nil && !errors.Is(err, ErrNoAgent) {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}
