package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/dynamotest"
)

// TestClaimGenerationNeverReusesANumber: numbers only grow, respect the
// latest recorded generation, and concurrent claims get distinct numbers.
func TestClaimGenerationNeverReusesANumber(t *testing.T) {
	ctx := context.Background()
	s := store.New(dynamotest.Client(t), dynamotest.Tables(t))
	steps := []struct {
		after int64
		want  int64
	}{
		{0, 1}, // first key
		{0, 2}, // the first job failed: its number stays used
		{5, 6}, // generations recorded elsewhere move the floor up
		{3, 7}, // never below a number already claimed
		{10, 11},
	}
	for _, st := range steps {
		got, err := s.ClaimGeneration(ctx, "g", st.after)
		if err != nil || got != st.want {
			t.Fatalf("ClaimGeneration(after %d) = %d, %v; want %d", st.after, got, err, st.want)
		}
	}
	if got, _ := s.ClaimGeneration(ctx, "other", 0); got != 1 {
		t.Fatalf("another group starts at %d, want 1", got)
	}
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.ClaimGeneration(ctx, "race", 0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[n] {
				t.Errorf("number %d claimed twice", n)
			}
			seen[n] = true
		}()
	}
	wg.Wait()
}
