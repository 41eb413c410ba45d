package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/dynamotest"
)

// allStates is every stored State value (store/jobs.go).
var allStates = append(store.LiveStates(), store.StateSucceeded, store.StateFailed, store.StateSkipped)

// TestStateMachineRefusesIllegalTransitions tries every (from, to) pair of
// states on a job stored in from: a pair the machine lists is written; any
// other is refused with a TransitionError naming both states, and neither
// the stored job nor the caller's copy changes.
func TestStateMachineRefusesIllegalTransitions(t *testing.T) {
	ctx := context.Background()
	st := store.New(dynamotest.Client(t), dynamotest.Tables(t))
	e := &Engine{Store: st}
	legal := 0
	for _, from := range allStates {
		for _, to := range allStates {
			t.Run(fmt.Sprintf("%s->%s", from, to), func(t *testing.T) {
				j, _, err := st.StartJob(ctx, &store.Job{Group: "g-" + string(from) + "-" + string(to), Kind: store.KindRotate,
					Trigger: "operator", TriggerID: "pair", Deadline: time.Now().Add(time.Hour)}, 0)
				if err != nil {
					t.Fatal(err)
				}
				if from != store.StatePending {
					if err := st.Advance(ctx, j, from, "test setup"); err != nil {
						t.Fatal(err)
					}
				}
				before := *j
				err = e.advance(ctx, j, to, "test")
				have, gerr := st.GetJob(ctx, j.ID)
				if gerr != nil {
					t.Fatal(gerr)
				}
				if slices.Contains(machine[from].next, to) {
					legal++
					if err != nil || have.State != to {
						t.Fatalf("legal transition: err %v, stored state %s", err, have.State)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to || te.Job != j.ID {
					t.Fatalf("illegal transition not refused as a TransitionError naming %s and %s: %v", from, to, err)
				}
				if !strings.Contains(err.Error(), string(from)+" -> "+string(to)) {
					t.Errorf("error %q does not name the transition", err)
				}
				if have.State != from || have.Version != before.Version {
					t.Errorf("refused transition wrote: stored state %s version %d, was %s version %d", have.State, have.Version, from, before.Version)
				}
				if !reflect.DeepEqual(*j, before) {
					t.Errorf("refused transition changed the caller's job:\n got %+v\nwant %+v", *j, before)
				}
			})
		}
	}
	if legal == 0 {
		t.Fatal("no legal transition was tried")
	}
}

// TestStateMachineEveryStateHasAStep walks the machine from PENDING: every
// reachable state is in the table and has a step, waits for a named event,
// or is terminal (and then leads nowhere); the table's live states are
// store.LiveStates.
func TestStateMachineEveryStateHasAStep(t *testing.T) {
	seen := map[store.State]bool{}
	queue := []store.State{store.StatePending}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		if seen[s] {
			continue
		}
		seen[s] = true
		def, ok := machine[s]
		switch {
		case !ok:
			t.Errorf("state %s is reachable but not in the machine", s)
		case s.Terminal():
			if len(def.next) > 0 || def.step != nil || def.awaits != "" {
				t.Errorf("terminal state %s has a step, an event or transitions", s)
			}
		case def.step == nil && def.awaits == "":
			t.Errorf("live state %s has neither a step nor an event that moves it on", s)
		case def.step != nil && def.awaits != "":
			t.Errorf("state %s has both a step and an awaited event", s)
		case !slices.Contains(def.next, store.StateFailed):
			t.Errorf("live state %s cannot fail", s)
		}
		queue = append(queue, def.next...)
	}
	var live []store.State
	for s, def := range machine {
		if !seen[s] {
			t.Errorf("state %s is in the machine but unreachable from PENDING", s)
		}
		if len(def.next) > 0 {
			live = append(live, s)
		}
	}
	want := store.LiveStates()
	slices.Sort(live)
	slices.Sort(want)
	if !slices.Equal(live, want) {
		t.Errorf("the machine's live states %v are not store.LiveStates %v", live, want)
	}
	if len(machine) != len(allStates) {
		t.Errorf("the machine has %d states, the store %d", len(machine), len(allStates))
	}
}

// TestStateWritesGoThroughCommit: commit is the only caller of
// store.Advance in the engine's code, so no transition escapes the check.
func TestStateWritesGoThroughCommit(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := strings.Count(string(b), ".Store.Advance(")
		if f == "machine.go" && n != 1 {
			t.Errorf("machine.go calls Store.Advance %d times, want once (commit)", n)
		} else if f != "machine.go" && n > 0 {
			t.Errorf("%s writes a job's state with Store.Advance %d times: use advance or commit (machine.go)", f, n)
		}
	}
}
