package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Engine runs rotation jobs.
type Engine struct {
	Store *store.Store
	KMS   kmsAPI
	// Regional returns the KMS client of another Region of the account
	// (multi-Region groups' replicas, regions.go); nil serves only KMS.
	Regional    func(region string) (KMSAPI, error)
	Connections connectionsAPI
	Groups      *groups.Config
	// Signer signs wrap_requests (the control plane's KMS key); SignerID is
	// the envelope signer id (the key id agents pin).
	Signer   protocol.Signer
	SignerID string
	Pacer    *pacer.Pacer
	// CloudWatch and AlarmAction (the rotate function's ARN, the alarms'
	// action) enable run-time alarm management (ReconcileAlarms); either
	// unset disables it.
	CloudWatch  cloudWatchAPI
	AlarmAction string
	Metrics     *metrics.Emitter
	Log         *slog.Logger
	Now         func() time.Time

	// RequestTTL is the lifetime of a wrap_request (default
	// DefaultRequestTTL, at most protocol.MaxRequestLifetime).
	RequestTTL time.Duration
	// JobTimeout is the deadline of a job's current step (default
	// DefaultJobTimeout).
	JobTimeout time.Duration
	// MaxAttempts bounds sweeper retries of a stuck job (default
	// DefaultMaxAttempts).
	MaxAttempts int
	// Skew is the clock skew allowed on agent messages (default 2 min).
	Skew time.Duration
	// RotationPoll and RotationWait bound the wait for an in-place rotation
	// to complete inside one invocation (defaults 200ms and 20s).
	RotationPoll, RotationWait time.Duration

	// Handoff, when set, takes every job that a route, trigger or sweep
	// would run on to the job queue: the worker function runs it (Work).
	// Nil runs jobs inline in the caller's invocation (unit tests, tools).
	Handoff Handoff

	// testSeam is the tests' crash-injection hook (AfterStep), present
	// only with -tags keyferrytest (seam_keyferrytest.go).
	testSeam
}

// Errors callers branch on.
var (
	// ErrNoAgent: no live, verified agent of the group's pool is connected.
	ErrNoAgent = errors.New("engine: no live agent connected for the group's HSM pool")
	// ErrUnknownGroup: the group is not in the key-group file.
	ErrUnknownGroup = errors.New("engine: unknown group")
	// ErrRejected: an agent message was refused (bad signature, unknown
	// job, replay, mismatch); nothing changed.
	ErrRejected = errors.New("engine: agent message rejected")
)

// failure is a permanent error: the job fails with it as the reason.
type failure struct{ reason string }

func (f *failure) Error() string { return f.reason }

func failf(format string, args ...any) error { return &failure{reason: fmt.Sprintf(format, args...)} }

// common is what the concerns share with the Engine: the key-group file,
// the clock, the log and the metrics (each concern gets a copy from
// Engine.shared, never the Engine itself).
type common struct {
	groups  *groups.Config
	clock   func() time.Time
	logger  *slog.Logger
	metrics *metrics.Emitter
}

// shared is the Engine's common part, for a concern.
func (e *Engine) shared() common {
	return common{groups: e.Groups, clock: e.Now, logger: e.Log, metrics: e.Metrics}
}

func (c common) now() time.Time {
	if c.clock != nil {
		return c.clock().UTC()
	}
	return time.Now().UTC()
}

func (c common) log() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}

func (c common) group(name string) (*groups.Group, error) {
	if c.groups == nil {
		return nil, fmt.Errorf("%w: %q (no key-group file loaded)", ErrUnknownGroup, name)
	}
	g, ok := c.groups.Group(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGroup, name)
	}
	return g, nil
}

func (e *Engine) now() time.Time { return e.shared().now() }

func (e *Engine) log() *slog.Logger { return e.shared().log() }

func (e *Engine) requestTTL() time.Duration {
	if e.RequestTTL > 0 {
		return e.RequestTTL
	}
	return DefaultRequestTTL
}

func (e *Engine) jobTimeout() time.Duration {
	if e.JobTimeout > 0 {
		return e.JobTimeout
	}
	return DefaultJobTimeout
}

func (e *Engine) maxAttempts() int {
	if e.MaxAttempts > 0 {
		return e.MaxAttempts
	}
	return DefaultMaxAttempts
}

// The engine's defaults, written once (functions/awsconfig leaves an
// unset variable at zero, which means these).
const (
	DefaultRequestTTL  = 5 * time.Minute
	DefaultJobTimeout  = 15 * time.Minute
	DefaultMaxAttempts = 3
)

func (e *Engine) skew() time.Duration {
	if e.Skew > 0 {
		return e.Skew
	}
	return 2 * time.Minute
}

func (e *Engine) group(name string) (*groups.Group, error) { return e.shared().group(name) }

func scope(g *groups.Group) string { return g.Account + "/" + g.Region }

// call runs one KMS operation through the pacer.
func (e *Engine) call(ctx context.Context, g *groups.Group, op pacer.Op, f func(context.Context) error) error {
	return pace(ctx, e.Pacer, g, op, f)
}

// pace runs one KMS operation of g's scope through p (every concern's
// KMS calls go through it).
func pace(ctx context.Context, p *pacer.Pacer, g *groups.Group, op pacer.Op, f func(context.Context) error) error {
	return p.Do(ctx, scope(g), string(op), f)
}

// TriggerRequest starts (or finds) the job for one trigger delivery.
type TriggerRequest struct {
	Group     string
	Kind      store.Kind
	Trigger   string // schedule, alarm, operator, keepalive, restore
	TriggerID string
	// Cooldown > 0 applies the group's alarm cooldown.
	Cooldown time.Duration
	// Generation names the generation a reimport job re-arms.
	Generation int64
}

// Start records the trigger and, if it started a new job, runs it as far as
// it goes in this invocation (normally until the wrap_request is sent).
func (e *Engine) Start(ctx context.Context, r TriggerRequest) (*store.Job, store.Outcome, error) {
	g, err := e.group(r.Group)
	if err != nil {
		return nil, "", err
	}
	kind := r.Kind
	if kind == "" {
		kind = store.KindRotate
	}
	j := &store.Job{
		Group: g.Name, Kind: kind, Trigger: r.Trigger, TriggerID: r.TriggerID,
		Target:   store.Target{ReimportGeneration: r.Generation},
		Deadline: e.now().Add(e.jobTimeout()),
	}
	j, outcome, err := e.Store.StartJob(ctx, j, r.Cooldown)
	if err != nil {
		return nil, "", err
	}
	log := e.log().With("job", j.ID, "group", j.Group, "trigger", r.Trigger, "outcome", string(outcome))
	switch outcome {
	case store.Started:
		log.InfoContext(ctx, "job started", "kind", string(kind))
		err = e.runOrHandOn(ctx, j)
	case store.Skipped:
		log.InfoContext(ctx, "trigger skipped", "reason", j.Reason)
	case store.Duplicate:
		log.InfoContext(ctx, "duplicate trigger", "state", string(j.State))
	}
	return j, outcome, err
}

// Resume reloads a job and runs it on.
func (e *Engine) Resume(ctx context.Context, jobID string) (*store.Job, error) {
	j, err := e.Store.GetJob(ctx, jobID)
	if err != nil {
		return nil, err
	}
	err = e.Run(ctx, j)
	return j, err
}

// Run advances j until it waits for an agent (REQUESTED), ends, or hits a
// transient error (left for a later event or the sweeper). With a Handoff,
// a run whose invocation is near its deadline hands the job on instead of
// starting a step it may not finish.
func (e *Engine) Run(ctx context.Context, j *store.Job) error {
	for !j.State.Terminal() {
		if machine[j.State].awaits != "" {
			return nil // an event moves it on (machine.go)
		}
		if e.Handoff != nil && nearDeadline(ctx) {
			e.log().InfoContext(ctx, "invocation near its deadline: job handed on", "job", j.ID, "state", string(j.State))
			return e.Handoff.HandOn(ctx, j.ID, 0)
		}
		g, err := e.group(j.Group)
		if err != nil {
			return e.fail(ctx, j, err.Error())
		}
		from := j.State
		err = e.stepInRegion(ctx, g, j)
		var f *failure
		switch {
		case errors.As(err, &f):
			return e.fail(ctx, j, regionReason(j, f.reason))
		case errors.Is(err, store.ErrConflict):
			// Someone else advanced the job: stop; they own it now.
			e.log().InfoContext(ctx, "job advanced elsewhere", "job", j.ID, "state", string(from))
			return nil
		case err != nil:
			if reason, denied := accessDenied(err); denied {
				return e.fail(ctx, j, reason)
			}
			e.log().WarnContext(ctx, "job step failed, will retry", "job", j.ID, "group", j.Group, "state", string(from), "error", err.Error())
			return err
		}
		if err := e.afterStep(j); err != nil {
			return err
		}
	}
	return nil
}

// advance commits a transition and renews the deadline.
func (e *Engine) advance(ctx context.Context, j *store.Job, to store.State, note string) error {
	if err := e.commit(ctx, j, to, note, e.now().Add(e.jobTimeout())); err != nil {
		return err
	}
	e.log().InfoContext(ctx, "job transition", "job", j.ID, "group", j.Group, "to", string(to), "note", note)
	return nil
}

// fail ends j as FAILED with reason and cleans up a new key that never got
// material (so no key is left behind in PendingImport).
func (e *Engine) fail(ctx context.Context, j *store.Job, reason string) error {
	if j.State.Terminal() {
		return nil
	}
	from := j.State
	if err := checkTransition(j, store.StateFailed); err != nil {
		return err
	}
	j.Reason = reason
	if err := e.commit(ctx, j, store.StateFailed, reason, time.Time{}); err != nil {
		return err
	}
	e.log().ErrorContext(ctx, "job failed", "job", j.ID, "group", j.Group, "state", string(from), "reason", reason)
	e.Metrics.Emit(metrics.RotationsFailed, 1, metrics.Count, map[string]string{"Group": j.Group})
	if g, err := e.group(j.Group); err == nil {
		e.cleanupNewKey(ctx, g, j)
		e.cleanupPendingMaterial(ctx, g, j)
	}
	return nil
}
