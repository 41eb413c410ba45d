package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
)

// Rotator is the part of the sandbox that fires and follows rotations.
type Rotator interface {
	Trigger(ctx context.Context, group, trigger, id string) (handlers.RotateResult, error)
	WaitJob(ctx context.Context, id string, timeout time.Duration) (*store.Job, error)
}

// Sample is one rotation: trigger -> job terminal (switched and verified
// when SUCCEEDED).
type Sample struct {
	Group   string
	JobID   string
	Mode    string // the mode the job used
	State   store.State
	Reason  string
	Latency time.Duration // trigger call -> the job's last update
	Err     error
	// ParamsAt is when the job first reached PARAMS: its
	// GetParametersForImport, the fleet's binding quota, had answered.
	ParamsAt time.Time

	pending store.State // last non-terminal state seen (Fleet)
}

// Rotate fires one schedule trigger for every group with at most workers
// in flight and waits for every job. Latency runs from just before the
// trigger to the job's final UpdatedAt (the engine's clock is this
// machine's), so polling granularity does not count.
func Rotate(ctx context.Context, r Rotator, groups []string, tag string, workers int, timeout time.Duration) []Sample {
	if workers < 1 {
		workers = 1
	}
	out := make([]Sample, len(groups))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = rotateOne(ctx, r, g, tag, timeout)
		}()
	}
	wg.Wait()
	return out
}

func rotateOne(ctx context.Context, r Rotator, group, tag string, timeout time.Duration) Sample {
	s := Sample{Group: group}
	start := time.Now()
	res, err := r.Trigger(ctx, group, "schedule", tag+"-"+group)
	if err != nil {
		s.Err = fmt.Errorf("trigger %s: %w", group, err)
		return s
	}
	if res.JobID == "" {
		s.Err = fmt.Errorf("trigger %s started no job: %s %s", group, res.Outcome, res.Reason)
		return s
	}
	s.JobID = res.JobID
	j, err := r.WaitJob(ctx, res.JobID, timeout)
	if j != nil {
		s.Mode, s.State, s.Reason = string(j.Mode), j.State, j.Reason
		s.Latency = j.UpdatedAt.Sub(start)
	}
	if err != nil {
		s.Err = err
	} else if j.State != store.StateSucceeded {
		s.Err = fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Reason)
	}
	return s
}

// Outcome summarises samples.
type Outcome struct {
	OK, Failed int
	Latencies  []time.Duration // of the successful ones
	FirstErr   error
	// Throttled counts failures whose reason mentions throttling.
	Throttled int
}

// Summarize counts samples.
func Summarize(samples []Sample) Outcome {
	var o Outcome
	for _, s := range samples {
		if s.Err != nil {
			o.Failed++
			if o.FirstErr == nil {
				o.FirstErr = s.Err
			}
			if containsFold(s.Err.Error(), "throttl") || containsFold(s.Reason, "throttl") {
				o.Throttled++
			}
			continue
		}
		o.OK++
		o.Latencies = append(o.Latencies, s.Latency)
	}
	return o
}
