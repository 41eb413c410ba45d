package store_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/ddbfault"
	"github.com/keyferry/keyferry/test/dynamotest"
)

// TestWriteWhoseAnswerWasLostSucceeds: DynamoDB applies a job write but the
// answer is lost; the SDK's retry fails its own version condition. Advance
// (plain and terminal, i.e. transactional) and Save see their own write and
// succeed, and the stored job is the one written; so does StartJob (its
// own job is Started, not a Duplicate left for the sweeper). A real
// concurrent change is still ErrConflict and changes nothing.
func TestWriteWhoseAnswerWasLostSucceeds(t *testing.T) {
	ctx := context.Background()
	tables := dynamotest.Tables(t)
	var drop atomic.Bool
	p, err := ddbfault.Start(dynamotest.Endpoint(), func(op string, body []byte) *ddbfault.Action {
		if (op == "PutItem" || op == "TransactWriteItems") && drop.CompareAndSwap(true, false) {
			return &ddbfault.Action{DropResponse: true}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := store.New(dynamotest.ClientAt(p.URL()), tables)
	drop.Store(true)
	j, o, err := s.StartJob(ctx, job("g1", "lost-1"), 0)
	if err != nil || o != store.Started || drop.Load() {
		t.Fatalf("start with a lost answer: %v %v (answer dropped: %v); want started", o, err, !drop.Load())
	}
	// A second delivery of the same trigger is still a duplicate.
	if _, o, err := s.StartJob(ctx, job("g1", "lost-1"), 0); err != nil || o != store.Duplicate {
		t.Fatalf("redelivered trigger: %v %v, want duplicate", o, err)
	}
	steps := []struct {
		name string
		do   func() error
		want store.State
	}{
		{"advance", func() error { return s.Advance(ctx, j, store.StateKeyReady, "k") }, store.StateKeyReady},
		{"save", func() error { j.HSMLabel = "kf/g1/1"; return s.Save(ctx, j) }, store.StateKeyReady},
		{"terminal advance", func() error { return s.Advance(ctx, j, store.StateFailed, "r") }, store.StateFailed},
	}
	for _, st := range steps {
		drop.Store(true)
		v := j.Version
		if err := st.do(); err != nil {
			t.Fatalf("%s with a lost answer: %v", st.name, err)
		}
		if drop.Load() {
			t.Fatalf("%s: no answer was dropped", st.name)
		}
		got, err := s.GetJob(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != v+1 || j.Version != v+1 || got.State != st.want || got.HSMLabel != "kf/g1/1" && st.name != "advance" {
			t.Fatalf("%s: stored v%d %s %q, in memory v%d; want v%d %s", st.name, got.Version, got.State, got.HSMLabel, j.Version, v+1, st.want)
		}
	}
	// The lock went with the terminal write: the group takes a new job.
	if _, o, err := s.StartJob(ctx, job("g1", "lost-2"), 0); err != nil || o != store.Started {
		t.Fatalf("group lock not released by the terminal write: %v %v", o, err)
	}

	// A real concurrent change is still a conflict, and writes nothing.
	a, _, err := s.StartJob(ctx, job("g2", "race"), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.GetJob(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(ctx, a, store.StateKeyReady, "first"); err != nil {
		t.Fatal(err)
	}
	if err := s.Advance(ctx, b, store.StateFailed, "second"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale advance: %v, want ErrConflict", err)
	}
	if got, _ := s.GetJob(ctx, a.ID); got.State != store.StateKeyReady {
		t.Fatalf("stale advance changed the job to %s", got.State)
	}
}
