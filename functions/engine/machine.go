package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// The rotation engine as a declared state machine: machine is the one table
// of a job's states, the states each may move to, and the step that runs in
// each. Run looks a job's step up here; commit (the only writer of a job's
// state in the engine) refuses a transition the table does not list,
// before anything is written. The stored values of store.State are
// unchanged: other functions and existing items read them.

// stepFunc runs the step of a job's state: the state's work, ending in
// the job's next transition (advance), or an error.
type stepFunc func(e *Engine, ctx context.Context, g *groups.Group, j *store.Job) error

// stateDef is one row of the machine.
type stateDef struct {
	// next lists the states a job may move to from this one.
	next []store.State
	// step is the state's work (Run calls it); nil for a terminal state
	// and for a state that waits for an event (awaits).
	step stepFunc
	// awaits names the event that moves a job on from a state without a
	// step: Run stops there.
	awaits string
}

// machine is the table; see init (a package-level initializer would be an
// initialization cycle: the steps commit transitions, which read it).
var machine map[store.State]stateDef

func init() {
	const (
		pending   = store.StatePending
		keyReady  = store.StateKeyReady
		params    = store.StateParams
		requested = store.StateRequested
		result    = store.StateResult
		imported  = store.StateImported
		rotating  = store.StateRotating
		verified  = store.StateVerified
		switched  = store.StateSwitched
		succeeded = store.StateSucceeded
		failed    = store.StateFailed
		skipped   = store.StateSkipped
	)
	// Every live state may go to FAILED (a step's failure, the sweeper's
	// deadline, an agent's refusal). KEY_READY is where a job goes back to
	// for fresh import parameters (expired or about to, an agent lost or
	// refused) and, in a multi-Region group, for the next replica Region
	// (regions.go: from VERIFIED, or IMPORTED for an in-place rotation).
	machine = map[store.State]stateDef{
		// SKIPPED is written by the store (StartJob) for a trigger that
		// found the group's lock held or its cooldown running.
		pending:   {step: (*Engine).stepPlan, next: []store.State{keyReady, failed, skipped}},
		keyReady:  {step: (*Engine).stepParams, next: []store.State{params, failed}},
		params:    {step: (*Engine).stepRequest, next: []store.State{requested, keyReady, failed}},
		requested: {awaits: "the agent's wrap_result (HandleWrapResult)", next: []store.State{result, params, keyReady, failed}},
		result:    {step: (*Engine).stepImport, next: []store.State{imported, keyReady, failed}},
		imported:  {step: (*Engine).stepImported, next: []store.State{rotating, verified, keyReady, failed}},
		rotating:  {step: (*Engine).stepRotating, next: []store.State{verified, failed}},
		verified:  {step: (*Engine).stepSwitch, next: []store.State{switched, keyReady, failed}},
		switched:  {step: (*Engine).stepFinish, next: []store.State{succeeded, failed}},
		succeeded: {},
		failed:    {},
		skipped:   {},
	}
}

// TransitionError is a transition the machine does not allow; it is
// returned before anything is written.
type TransitionError struct {
	Job      string
	From, To store.State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("engine: job %s: illegal transition %s -> %s", e.Job, e.From, e.To)
}

// checkTransition refuses a move of j to a state the machine does not
// list for j's state (an unknown state allows nothing).
func checkTransition(j *store.Job, to store.State) error {
	if def, ok := machine[j.State]; ok && slices.Contains(def.next, to) {
		return nil
	}
	return &TransitionError{Job: j.ID, From: j.State, To: to}
}

// step runs the step of j's state (g is the group as the job's Region sees it).
func (e *Engine) step(ctx context.Context, g *groups.Group, j *store.Job) error {
	def, ok := machine[j.State]
	if !ok || def.step == nil {
		return fmt.Errorf("engine: job %s in unexpected state %s", j.ID, j.State)
	}
	return def.step(e, ctx, g, j)
}

// commit is the one writer of a job's state in the engine: it checks the
// transition against the machine, then sets the deadline (unless zero) and
// writes (store.Advance, version-checked).
func (e *Engine) commit(ctx context.Context, j *store.Job, to store.State, note string, deadline time.Time) error {
	if err := checkTransition(j, to); err != nil {
		e.log().ErrorContext(ctx, "illegal job transition refused", "job", j.ID, "group", j.Group, "from", string(j.State), "to", string(to))
		return err
	}
	if !deadline.IsZero() {
		j.Deadline = deadline
	}
	return e.Store.Advance(ctx, j, to, note)
}
