package engine

import (
	"context"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
)

// The Engine's concerns. The Engine runs rotation jobs (engine.go,
// machine.go, steps.go, verify.go, regions.go, replicas.go, pending.go);
// three concerns are types of their own, each holding only the clients and
// the part of the store it uses, built from the Engine's fields when used
// (so a field set after construction, or a Region's copy of the Engine,
// is what they see):
//
//   - agentBroker (agents.go, pool.go, resume.go, supersede.go): the
//     agents' connections, with connectionsAPI and agentStore;
//   - alarmReconciler (alarms.go): the groups' CloudWatch alarms, with
//     cloudWatchAPI and generationReader;
//   - maintainer (maintenance.go, orphans.go): keepalive, the sweeper, the
//     kill switch, restore, re-import, policy sync and orphaned keys, with
//     maintenanceKMS and maintenanceStore.
//
// None holds the Engine: what they ask of the rotation goes through
// jobRunner and maintenanceRotation (TestEngineConcernsUseNarrowInterfaces).
// The Engine's exported methods below are the concerns' API as the
// handlers call it.

// Registered reports whether agent id is registered in pool.
func (e *Engine) Registered(pool, id string) bool { return e.agents().Registered(pool, id) }

// HandleHello verifies and records an agent's hello (agentBroker.HandleHello).
func (e *Engine) HandleHello(ctx context.Context, connID string, env *protocol.Envelope) error {
	return e.agents().HandleHello(ctx, connID, env)
}

// HandleWrapResult verifies a wrap_result (registered agent signature, live
// job awaiting exactly this request, nonce, key, spec and algorithm),
// records it (agentBroker.wrapResult) and hands the job on (runs it on
// without a Handoff). Anything else is rejected with ErrRejected, logged,
// and changes nothing.
func (e *Engine) HandleWrapResult(ctx context.Context, connID string, env *protocol.Envelope) (*store.Job, error) {
	j, err := e.agents().wrapResult(ctx, connID, env)
	if err != nil {
		return nil, err
	}
	// The crash seam sees an accepted result as a step (Run): here, not in
	// the agents' concern, so the release build's no-op hook inlines away
	// (TestReleaseBuildCarriesNoTestSeam).
	if err := e.afterStep(j); err != nil {
		return j, err
	}
	return j, e.runOrHandOn(ctx, j)
}

// HandleAgentError records an agent's refusal of a wrap_request
// (agentBroker.HandleAgentError).
func (e *Engine) HandleAgentError(ctx context.Context, connID string, env *protocol.Envelope) error {
	return e.agents().HandleAgentError(ctx, connID, env)
}

// HandleDraining records an agent's draining notice and hands over the
// requests it will not finish (agentBroker.HandleDraining).
func (e *Engine) HandleDraining(ctx context.Context, connID string, env *protocol.Envelope) error {
	return e.agents().HandleDraining(ctx, connID, env)
}

// ConnectionClosed hands a closed connection's outstanding requests to
// another agent (agentBroker.ConnectionClosed).
func (e *Engine) ConnectionClosed(ctx context.Context, c *store.Connection) error {
	return e.agents().ConnectionClosed(ctx, c)
}

// ReapSilent treats pool's connections silent past their heartbeat lapse
// as gone (agentBroker.ReapSilent).
func (e *Engine) ReapSilent(ctx context.Context, pool string) (int, error) {
	return e.agents().ReapSilent(ctx, pool)
}

// Outstanding counts the REQUESTED jobs of every connection
// (agentBroker.Outstanding).
func (e *Engine) Outstanding(ctx context.Context) (map[string]int, error) {
	return e.agents().Outstanding(ctx)
}

// AlarmOwner maps a CloudWatch alarm name to its group and alarm
// (alarmReconciler.AlarmOwner).
func (e *Engine) AlarmOwner(name string) (AlarmRef, error) { return e.alarms().AlarmOwner(name) }

// ReconcileAlarms makes the group's CloudWatch alarms match the key-group
// file on its current key (alarmReconciler.ReconcileAlarms).
func (e *Engine) ReconcileAlarms(ctx context.Context, group string) (*AlarmReport, error) {
	return e.alarms().ReconcileAlarms(ctx, group)
}

// Keepalive starts the re-imports due before material expires and
// reconciles every group's alarms (maintainer.Keepalive).
func (e *Engine) Keepalive(ctx context.Context) ([]*store.Job, error) {
	return e.maintenance().Keepalive(ctx)
}

// KeepaliveGroup is Keepalive's re-import pass for one group
// (maintainer.KeepaliveGroup).
func (e *Engine) KeepaliveGroup(ctx context.Context, group string) ([]*store.Job, error) {
	return e.maintenance().KeepaliveGroup(ctx, group)
}

// Sweep retries or fails jobs past their deadline and cleans up after
// failed jobs, orphaned keys and silent agents (maintainer.Sweep).
func (e *Engine) Sweep(ctx context.Context) (retried, failed int, err error) {
	return e.maintenance().Sweep(ctx)
}

// SweepOrphanKeys schedules deletion of PendingImport keys no job owns
// (maintainer.SweepOrphanKeys).
func (e *Engine) SweepOrphanKeys(ctx context.Context) (int, error) {
	return e.maintenance().SweepOrphanKeys(ctx)
}

// Kill engages the group's kill switch (maintainer.Kill).
func (e *Engine) Kill(ctx context.Context, group string) (int, error) {
	return e.maintenance().Kill(ctx, group)
}

// Restore lifts the group's kill switch (maintainer.Restore).
func (e *Engine) Restore(ctx context.Context, group, requestID string) ([]*store.Job, error) {
	return e.maintenance().Restore(ctx, group, requestID)
}

// Reimport starts a re-import of every live generation of the group
// (maintainer.Reimport).
func (e *Engine) Reimport(ctx context.Context, group, requestID string) ([]*store.Job, error) {
	return e.maintenance().Reimport(ctx, group, requestID)
}

// SyncPolicy puts the group's key policy on every key of the group
// (maintainer.SyncPolicy).
func (e *Engine) SyncPolicy(ctx context.Context, group string) (int, error) {
	return e.maintenance().SyncPolicy(ctx, group)
}
