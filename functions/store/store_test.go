package store_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/dynamotest"
)

func TestMain(m *testing.M) { os.Exit(dynamotest.Main(m)) }

func newStore(t *testing.T) *store.Store {
	t.Helper()
	return store.New(dynamotest.Client(t), dynamotest.Tables(t))
}

func job(group, trigger string) *store.Job {
	return &store.Job{Group: group, Kind: store.KindRotate, Trigger: "schedule", TriggerID: trigger, Deadline: time.Now().Add(time.Hour)}
}

func TestDuplicateTriggerStartsOneJob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	j1, o1, err := s.StartJob(ctx, job("g1", "trig-1"), 0)
	if err != nil || o1 != store.Started {
		t.Fatalf("first delivery: %v %v", o1, err)
	}
	j2, o2, err := s.StartJob(ctx, job("g1", "trig-1"), 0)
	if err != nil || o2 != store.Duplicate {
		t.Fatalf("second delivery: outcome %v err %v, want duplicate", o2, err)
	}
	if j1.ID != j2.ID {
		t.Fatalf("duplicate trigger named job %s, first was %s", j2.ID, j1.ID)
	}
}

func TestConcurrentTriggersOneRunsOtherSkipped(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const n = 6
	var wg sync.WaitGroup
	outcomes := make([]store.Outcome, n)
	jobs := make([]*store.Job, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs[i], outcomes[i], errs[i] = s.StartJob(ctx, job("g1", "trig-"+string(rune('a'+i))), 0)
		}()
	}
	wg.Wait()
	started := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("trigger %d: %v", i, errs[i])
		}
		switch outcomes[i] {
		case store.Started:
			started++
		case store.Skipped:
			got, err := s.GetJob(ctx, jobs[i].ID)
			if err != nil || got.State != store.StateSkipped || got.Reason == "" {
				t.Fatalf("skipped job not recorded with reason: %+v %v", got, err)
			}
		default:
			t.Fatalf("trigger %d: outcome %s", i, outcomes[i])
		}
	}
	if started != 1 {
		t.Fatalf("%d jobs started for one group, want 1", started)
	}
}

func TestTerminalStateReleasesLock(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	j, _, err := s.StartJob(ctx, job("g1", "t1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, o, _ := s.StartJob(ctx, job("g1", "t2"), 0); o != store.Skipped {
		t.Fatalf("second trigger while running: %s, want skipped", o)
	}
	if err := s.Advance(ctx, j, store.StateKeyReady, ""); err != nil {
		t.Fatal(err)
	}
	j.Reason = "test"
	if err := s.Advance(ctx, j, store.StateFailed, "test"); err != nil {
		t.Fatal(err)
	}
	if _, o, err := s.StartJob(ctx, job("g1", "t3"), 0); o != store.Started {
		t.Fatalf("after release: %s %v, want started", o, err)
	}
	got, _ := s.GetJob(ctx, j.ID)
	if len(got.History) != 3 || got.History[2].To != store.StateFailed {
		t.Fatalf("history = %+v", got.History)
	}
}

func TestAdvanceLosesToConcurrentWriter(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	j, _, err := s.StartJob(ctx, job("g1", "t1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	stale := *j
	if err := s.Advance(ctx, j, store.StateKeyReady, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(ctx, &stale, store.StateKeyReady, ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale advance: %v, want ErrConflict", err)
	}
	if stale.State != store.StatePending {
		t.Fatalf("failed advance mutated the job: %s", stale.State)
	}
}

func TestAlarmCooldown(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	j, o, err := s.StartJob(ctx, job("g1", "alarm-1"), time.Hour)
	if err != nil || o != store.Started {
		t.Fatal(o, err)
	}
	if err := s.Advance(ctx, j, store.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	j2, o, err := s.StartJob(ctx, job("g1", "alarm-2"), time.Hour)
	if err != nil || o != store.Skipped {
		t.Fatalf("alarm within cooldown: %s %v, want skipped", o, err)
	}
	if j2.Reason == "" {
		t.Fatal("no reason")
	}
	// A scheduled rotation is not subject to the alarm cooldown.
	if _, o, err := s.StartJob(ctx, job("g1", "sched-1"), 0); o != store.Started {
		t.Fatalf("schedule after alarm: %s %v", o, err)
	}
}

func TestJobsInState(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	j, _, _ := s.StartJob(ctx, job("g1", "t1"), 0)
	j.RequestID = "req-1"
	if err := s.Advance(ctx, j, store.StateRequested, ""); err != nil {
		t.Fatal(err)
	}
	late, err := s.JobsInState(ctx, store.StateRequested, time.Now().Add(2*time.Hour))
	if err != nil || len(late) != 1 {
		t.Fatalf("jobs in state: %d %v", len(late), err)
	}
	early, _ := s.JobsInState(ctx, store.StateRequested, time.Now())
	if len(early) != 0 {
		t.Fatalf("job before its deadline listed as overdue")
	}
	// The window's lower bound: the job's deadline (an hour ahead) is
	// inside [now, now+2h] and outside [now+90min, now+2h].
	if in, err := s.JobsInStateBetween(ctx, store.StateRequested, time.Now(), time.Now().Add(2*time.Hour)); err != nil || len(in) != 1 {
		t.Fatalf("jobs in window: %d %v, want 1", len(in), err)
	}
	if out, _ := s.JobsInStateBetween(ctx, store.StateRequested, time.Now().Add(90*time.Minute), time.Now().Add(2*time.Hour)); len(out) != 0 {
		t.Fatalf("job with an earlier deadline listed in a later window")
	}
}

func TestGenerationsAndConnections(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for i := int64(1); i <= 3; i++ {
		if err := s.PutGeneration(ctx, &store.Generation{Group: "g1", Generation: i, KeyARN: "arn", State: store.GenCurrent}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutGeneration(ctx, &store.Generation{Group: "g1", Generation: 2}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate generation: %v", err)
	}
	l, err := s.Latest(ctx, "g1")
	if err != nil || l.Generation != 3 {
		t.Fatalf("latest: %v %v", l, err)
	}
	if err := s.PutConnection(ctx, &store.Connection{ID: "c1", AgentID: "a1", Pool: "p"}); err != nil {
		t.Fatal(err)
	}
	_ = s.PutConnection(ctx, &store.Connection{ID: "c2", AgentID: "a2", Pool: "q"})
	cs, err := s.ConnectionsInPool(ctx, "p")
	if err != nil || len(cs) != 1 || cs[0].AgentID != "a1" {
		t.Fatalf("pool p: %v %v", cs, err)
	}
	if err := s.DeleteConnection(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetConnection(ctx, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted connection: %v", err)
	}
}
