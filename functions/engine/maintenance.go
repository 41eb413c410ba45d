package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/keyferry/keyferry/functions/pacer"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// maintenanceStore is what the maintenance concern reads and writes in
// the store: generations, the kill switch, jobs past their deadline, the
// connection count.
type maintenanceStore interface {
	Generations(ctx context.Context, group string) ([]*store.Generation, error)
	UpdateGeneration(ctx context.Context, g *store.Generation) error
	SetKilled(ctx context.Context, group string, killed bool) error
	GetJob(ctx context.Context, id string) (*store.Job, error)
	Save(ctx context.Context, j *store.Job) error
	JobsInState(ctx context.Context, st store.State, before time.Time) ([]*store.Job, error)
	JobsInStateBetween(ctx context.Context, st store.State, since, before time.Time) ([]*store.Job, error)
	CountConnections(ctx context.Context) (int, error)
}

// maintenanceRotation is what the maintenance concern asks of the
// rotation (the Engine): jobs (jobRunner), and the work on a group's keys
// in every Region of it that the rotation's steps also do (replicas.go,
// steps.go).
type maintenanceRotation interface {
	jobRunner
	cleanupNewKey(ctx context.Context, g *groups.Group, j *store.Job)
	killGeneration(ctx context.Context, g *groups.Group, gen *store.Generation) error
	putPolicyInReplicas(ctx context.Context, g *groups.Group, keyARN string) error
}

var _ maintenanceRotation = (*Engine)(nil)

// maintainer is the maintenance concern: keepalive re-imports before the
// material expires, the sweeper (jobs past their deadline, failed jobs'
// cleanup, orphaned keys, silent agents), the kill switch, restore,
// re-import and policy sync. It holds the KMS client as maintenanceKMS;
// jobs it starts or moves on run through the rotation (jobs), alarms
// through the alarms' concern, silent agents through the agents' one.
type maintainer struct {
	common
	kms         maintenanceKMS
	pacer       *pacer.Pacer
	store       maintenanceStore
	jobs        maintenanceRotation
	alarms      *alarmReconciler
	agents      *agentBroker
	jobTimeout  time.Duration
	maxAttempts int
}

// maintenance is the Engine's maintenance concern.
func (e *Engine) maintenance() *maintainer {
	return &maintainer{common: e.shared(), kms: e.KMS, pacer: e.Pacer, store: e.Store, jobs: e,
		alarms: e.alarms(), agents: e.agents(), jobTimeout: e.jobTimeout(), maxAttempts: e.maxAttempts()}
}

// FailedCleanupWindow is how long after a job failed the sweeper keeps
// retrying its cleanup (key material deleted, key deletion scheduled).
const FailedCleanupWindow = 30 * 24 * time.Hour

// DefaultReimportMargin applies when a group with expiring material sets none.
const DefaultReimportMargin = 7 * 24 * time.Hour

// Keepalive starts a re-import job (same HSM key re-wrapped,
// EXISTING_KEY_MATERIAL) for every live generation of every group with
// expiring material whose ValidTo is within the group's margin. Trigger
// ids are per generation and ValidTo, so repeated keepalive runs (and the
// material-expiry alarm, which calls KeepaliveGroup) start each re-import
// once. It also reconciles every group's alarms onto its current key, a
// safety net for a reconcile that failed after a switch.
func (m *maintainer) Keepalive(ctx context.Context) ([]*store.Job, error) {
	if m.groups == nil {
		return nil, nil
	}
	var out []*store.Job
	var errs []error
	for i := range m.groups.Groups {
		g := &m.groups.Groups[i]
		jobs, err := m.keepaliveGroup(ctx, g)
		out = append(out, jobs...)
		if err != nil {
			errs = append(errs, err)
		}
		if m.alarms.enabled() {
			if _, err := m.alarms.ReconcileAlarms(ctx, g.Name); err != nil {
				errs = append(errs, fmt.Errorf("alarms of %s: %w", g.Name, err))
			}
		}
	}
	return out, errors.Join(errs...)
}

// KeepaliveGroup is Keepalive's re-import pass for one group (what the
// group's material-expiry alarm asks for).
func (m *maintainer) KeepaliveGroup(ctx context.Context, group string) ([]*store.Job, error) {
	g, err := m.group(group)
	if err != nil {
		return nil, err
	}
	return m.keepaliveGroup(ctx, g)
}

func (m *maintainer) keepaliveGroup(ctx context.Context, g *groups.Group) ([]*store.Job, error) {
	if !g.MaterialExpires() {
		return nil, nil
	}
	now := m.now()
	margin := g.ReimportMargin.Std()
	if margin <= 0 {
		margin = DefaultReimportMargin
	}
	gens, err := m.store.Generations(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	var out []*store.Job
	var errs []error
	for _, gen := range gens {
		if gen.State == store.GenKilled || gen.ExpiresAt.IsZero() {
			continue
		}
		left := gen.ExpiresAt.Sub(now)
		m.metrics.Emit(metrics.MaterialSecondsToExpiry, left.Seconds(), metrics.Seconds, map[string]string{"Group": g.Name})
		m.metrics.Emit(metrics.KeyAge, now.Sub(gen.CreatedAt).Seconds(), metrics.Seconds, map[string]string{"Group": g.Name})
		if left > margin {
			continue
		}
		j, _, err := m.jobs.Start(ctx, TriggerRequest{
			Group: g.Name, Kind: store.KindReimport, Trigger: "keepalive", Generation: gen.Generation,
			TriggerID: fmt.Sprintf("keepalive/%s/%d/%d", g.Name, gen.Generation, gen.ExpiresAt.Unix()),
		})
		if err != nil {
			errs = append(errs, err)
		}
		if j != nil {
			out = append(out, j)
		}
	}
	return out, errors.Join(errs...)
}

// Sweep finds live jobs past their deadline: each is retried from its
// last safe state (a REQUESTED job re-asks with fresh parameters) up to
// MaxAttempts, then failed with a reason. Failed jobs' new keys are cleaned
// up (no key left in PendingImport).
func (m *maintainer) Sweep(ctx context.Context) (retried, failed int, err error) {
	maxAttempts := m.maxAttempts
	now := m.now()
	var errs []error
	if err := m.agents.reapAllSilent(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, st := range store.LiveStates() {
		jobs, err := m.store.JobsInState(ctx, st, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, j := range jobs {
			if j.Attempts >= maxAttempts {
				if err := m.jobs.fail(ctx, j, fmt.Sprintf("deadline exceeded in state %s after %d attempts", st, j.Attempts)); err != nil {
					errs = append(errs, err)
				}
				failed++
				continue
			}
			j.Attempts++
			var aerr error
			if st == store.StateRequested {
				aerr = m.jobs.advance(ctx, j, store.StateKeyReady, "no wrap_result before the deadline: ask again")
			} else {
				j.Deadline = now.Add(m.jobTimeout)
				aerr = m.store.Save(ctx, j)
			}
			if aerr != nil {
				errs = append(errs, aerr)
				continue
			}
			retried++
			if err := m.jobs.runOrHandOn(ctx, j); err != nil {
				m.log().WarnContext(ctx, "sweeper retry did not finish", "job", j.ID, "error", err.Error())
			}
		}
	}
	// Failed jobs of the last FailedCleanupWindow only: older ones had every
	// sweep of a month to clean up (the key deletion window is 7 days), and
	// a sweep must not cost a KMS call per failed job of all time.
	failedJobs, err := m.store.JobsInStateBetween(ctx, store.StateFailed, now.Add(-FailedCleanupWindow), now.Add(m.jobTimeout))
	if err != nil {
		errs = append(errs, err)
	}
	for _, j := range failedJobs {
		if g, err := m.group(j.Group); err == nil {
			m.jobs.cleanupNewKey(ctx, g, j)
		}
	}
	if _, err := m.SweepOrphanKeys(ctx); err != nil {
		errs = append(errs, err)
	}
	if n, err := m.store.CountConnections(ctx); err == nil {
		m.metrics.Emit(metrics.AgentsConnected, float64(n), metrics.Count, nil)
	}
	return retried, failed, errors.Join(errs...)
}

// Kill engages the kill switch: DeleteImportedKeyMaterial on every material
// of every key of the group (every key becomes unusable at once) and marks
// the generations KILLED. The HSM copies stay; Restore re-imports them.
func (m *maintainer) Kill(ctx context.Context, group string) (int, error) {
	g, err := m.group(group)
	if err != nil {
		return 0, err
	}
	if err := m.store.SetKilled(ctx, g.Name, true); err != nil {
		return 0, err
	}
	gens, err := m.store.Generations(ctx, g.Name)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	// Newest first: for in-place keys the current material goes first.
	for i := len(gens) - 1; i >= 0; i-- {
		gen := gens[i]
		if gen.State == store.GenKilled {
			continue
		}
		// In every Region of a multi-Region key (replicas.go); the
		// generation is KILLED only once each Region's material is gone.
		if err := m.jobs.killGeneration(ctx, g, gen); err != nil {
			errs = append(errs, err)
			continue
		}
		gen.State = store.GenKilled
		if err := m.store.UpdateGeneration(ctx, gen); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	m.log().WarnContext(ctx, "kill switch engaged", "group", g.Name, "materials_deleted", n)
	return n, errors.Join(errs...)
}

// Restore lifts the kill switch: a re-import job (rewrap of the same HSM
// key) for every KILLED generation. requestID makes the operator request
// idempotent.
func (m *maintainer) Restore(ctx context.Context, group, requestID string) ([]*store.Job, error) {
	g, err := m.group(group)
	if err != nil {
		return nil, err
	}
	if err := m.store.SetKilled(ctx, g.Name, false); err != nil {
		return nil, err
	}
	return m.reimportWhere(ctx, g, "restore", "restore", requestID, func(s store.GenState) bool { return s == store.GenKilled })
}

// Reimport starts a re-import of every live generation (operator "sync
// import material").
func (m *maintainer) Reimport(ctx context.Context, group, requestID string) ([]*store.Job, error) {
	g, err := m.group(group)
	if err != nil {
		return nil, err
	}
	return m.reimportWhere(ctx, g, "operator", "sync-import", requestID, func(s store.GenState) bool { return s != store.GenKilled })
}

// reimportWhere starts one re-import job per generation whose state pick
// accepts; the trigger id (idPrefix/group/generation/requestID) makes a
// repeated operator request start nothing new.
func (m *maintainer) reimportWhere(ctx context.Context, g *groups.Group, trigger, idPrefix, requestID string, pick func(store.GenState) bool) ([]*store.Job, error) {
	gens, err := m.store.Generations(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	var out []*store.Job
	var errs []error
	for _, gen := range gens {
		if !pick(gen.State) {
			continue
		}
		j, _, err := m.jobs.Start(ctx, TriggerRequest{
			Group: g.Name, Kind: store.KindReimport, Trigger: trigger, Generation: gen.Generation,
			TriggerID: fmt.Sprintf("%s/%s/%d/%s", idPrefix, g.Name, gen.Generation, requestID),
		})
		if err != nil {
			errs = append(errs, err)
		}
		if j != nil {
			out = append(out, j)
		}
	}
	return out, errors.Join(errs...)
}

// SyncPolicy puts the group's key policy on every key of the group.
func (m *maintainer) SyncPolicy(ctx context.Context, group string) (int, error) {
	g, err := m.group(group)
	if err != nil {
		return 0, err
	}
	if len(g.Policy) == 0 {
		return 0, fmt.Errorf("engine: group %s has no policy document loaded", g.Name)
	}
	gens, err := m.store.Generations(ctx, g.Name)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, gen := range gens {
		if seen[gen.KeyARN] {
			continue
		}
		seen[gen.KeyARN] = true
		err := pace(ctx, m.pacer, g, pacer.OpPutKeyPolicy, func(ctx context.Context) error {
			_, err := m.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(gen.KeyARN), Policy: aws.String(string(g.Policy)), PolicyName: aws.String("default")})
			return err
		})
		if err != nil {
			return len(seen) - 1, fmt.Errorf("kms PutKeyPolicy %s: %w", gen.KeyARN, err)
		}
		if err := m.jobs.putPolicyInReplicas(ctx, g, gen.KeyARN); err != nil {
			return len(seen) - 1, fmt.Errorf("kms PutKeyPolicy %s: %w", gen.KeyARN, err)
		}
	}
	return len(seen), nil
}
