package store_test

import (
	"context"
	"testing"

	"github.com/keyferry/keyferry/functions/store"
)

// TestTerminalReimportReleasesItsGenerationLock: a re-import job holds the
// lock of its generation (group#generation), and its terminal write
// releases that lock, so the next keepalive or restore of the generation
// starts instead of being skipped for a job that ended long ago.
func TestTerminalReimportReleasesItsGenerationLock(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	reimport := func(trigger string) *store.Job {
		j := job("g1", trigger)
		j.Kind, j.ReimportGeneration = store.KindReimport, 1
		return j
	}
	j, o, err := s.StartJob(ctx, reimport("keepalive-1"), 0)
	if err != nil || o != store.Started {
		t.Fatalf("first re-import: %s %v", o, err)
	}
	if _, o, _ := s.StartJob(ctx, reimport("keepalive-2"), 0); o != store.Skipped {
		t.Fatalf("second re-import while the first runs: %s, want skipped", o)
	}
	if err := s.Advance(ctx, j, store.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	if _, o, err := s.StartJob(ctx, reimport("keepalive-3"), 0); o != store.Started {
		t.Fatalf("re-import after the first ended: %s %v, want started", o, err)
	}
}
