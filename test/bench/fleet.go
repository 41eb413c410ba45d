package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
)

// JobGetter reads a job (the control plane's store).
type JobGetter func(ctx context.Context, id string) (*store.Job, error)

// FleetResult is one fleet rotation.
type FleetResult struct {
	Samples []Sample
	// Elapsed runs from Start, the first trigger, to the last job's final
	// update.
	Start   time.Time
	Elapsed time.Duration
}

// Fleet fires a schedule trigger for every group at once (triggerWorkers
// triggers in flight, as EventBridge Scheduler fans out) and follows all
// jobs with one poller (every poll interval, one read per unfinished job)
// so that following 500 jobs does not itself load DynamoDB.
// TriggerRetries is how often a failed trigger is delivered again (the
// group schedules' RetryPolicy.MaximumRetryAttempts in infra/stack).
const TriggerRetries = 3

func Fleet(ctx context.Context, r Rotator, get JobGetter, groups []string, tag string, triggerWorkers int, poll, timeout time.Duration) FleetResult {
	samples := make([]Sample, len(groups))
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sem := make(chan struct{}, max(triggerWorkers, 1))
	var wg sync.WaitGroup
	for i, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s := Sample{Group: g}
			// As EventBridge Scheduler delivers: a failed invocation is
			// retried (the schedules' RetryPolicy allows 3 retries), with
			// the same trigger id, so a retry never starts a second job.
			var res handlers.RotateResult
			var err error
			for try := 0; try <= TriggerRetries; try++ {
				if res, err = r.Trigger(tctx, g, "schedule", tag+"-"+g); err == nil {
					break
				}
				time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
			}
			switch {
			case err != nil:
				s.Err = fmt.Errorf("trigger %s: %w", g, err)
			case res.JobID == "":
				s.Err = fmt.Errorf("trigger %s started no job: %s %s", g, res.Outcome, res.Reason)
			}
			s.JobID = res.JobID
			samples[i] = s
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(timeout)
	var last time.Time
	for {
		open := 0
		for i := range samples {
			s := &samples[i]
			if s.Err != nil || s.State != "" && terminal(s.State) {
				continue
			}
			j, err := get(ctx, s.JobID)
			if err != nil || !terminal(j.State) {
				if j != nil {
					s.Mode, s.Reason, s.pending = string(j.Mode), j.Reason, j.State
				}
				open++
				continue
			}
			s.Mode, s.State, s.Reason, s.Latency = string(j.Mode), j.State, j.Reason, j.UpdatedAt.Sub(start)
			for _, h := range j.History {
				if h.To == store.StateParams {
					s.ParamsAt = h.At
					break
				}
			}
			if j.UpdatedAt.After(last) {
				last = j.UpdatedAt
			}
			if j.State != store.StateSucceeded {
				s.Err = fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Reason)
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for i := range samples {
				if samples[i].Err == nil && !terminal(samples[i].State) {
					samples[i].Err = fmt.Errorf("job %s of %s still %s after %s (reason %q)", samples[i].JobID, samples[i].Group, samples[i].pending, timeout, samples[i].Reason)
				}
			}
			break
		}
		time.Sleep(poll)
	}
	if last.IsZero() {
		last = time.Now()
	}
	return FleetResult{Samples: samples, Start: start, Elapsed: last.Sub(start)}
}

// QuotaTimeline splits a fleet's elapsed time by what the binding quota
// (GetParametersForImport, one call per rotation) was doing: the lead-in
// before the first call, the calls at the paced interval, the time the
// quota sat idle beyond that interval (no job was ready for its slot), and
// the tail after the last call. Lead + Paced + Idle + Tail = Elapsed.
type QuotaTimeline struct {
	Calls                   int
	Lead, Paced, Idle, Tail time.Duration
	// LongestIdle is the largest single gap beyond the interval, and
	// LongestIdleAt when it began (from the fleet's start).
	LongestIdle, LongestIdleAt time.Duration
}

// Timeline computes the QuotaTimeline of a fleet run whose jobs were paced
// at interval.
func (fr FleetResult) Timeline(interval time.Duration) QuotaTimeline {
	var at []time.Time
	for _, s := range fr.Samples {
		if !s.ParamsAt.IsZero() {
			at = append(at, s.ParamsAt)
		}
	}
	var t QuotaTimeline
	if len(at) == 0 {
		t.Tail = fr.Elapsed
		return t
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	t.Calls = len(at)
	t.Lead = at[0].Sub(fr.Start)
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		if gap <= interval {
			t.Paced += gap
			continue
		}
		t.Paced += interval
		t.Idle += gap - interval
		if gap-interval > t.LongestIdle {
			t.LongestIdle, t.LongestIdleAt = gap-interval, at[i-1].Sub(fr.Start)
		}
	}
	t.Tail = fr.Elapsed - t.Lead - t.Paced - t.Idle
	return t
}

func terminal(st store.State) bool {
	return st == store.StateSucceeded || st == store.StateFailed || st == store.StateSkipped
}
