package engine

// Agents of an HSM pool (groups.HSMPool: one logical HSM whose agents share
// the key store). The rules, each written once here:
//
//   - Spread: a wrap request goes to the live agent of the group's pool that
//     can do the job's key spec and wrapping and has the fewest outstanding
//     wrap requests, ties broken at random.
//   - One agent at a time: a job's wrap request is outstanding at one
//     connection (Job.ConnectionID); handing it to another agent issues a
//     new request id and nonce, so a late result of the first request no
//     longer matches the job and is refused (acceptWrapResult), never
//     imported.
//   - Hand-over: when that connection closes ($disconnect), its agent says
//     it is draining, or it stays silent for its heartbeat lapse
//     (protocol.Hello.HeartbeatLapse), the job goes back to PARAMS (its
//     import parameters still hold) and is handed on through the job
//     queue; the worker sends it to another live agent of the pool at once.
//     The websocket routes only record this and enqueue: nothing waits in
//     them. A job no other agent can do waits in PARAMS for the next hello.
//   - One HSM key per generation: the generate request names the
//     generation's label, and an agent whose token already holds that label
//     (another agent of the pool created it before it died) wraps that key
//     instead of making a second one (agent/daemon generate).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	apigwtypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/protocol"
)

// connectionsAPI is the slice of the @connections management client the agents' concern
// uses: send a wrap_request, close a superseded connection.
type connectionsAPI interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
	// DeleteConnection closes an agent's superseded connection (supersede.go).
	DeleteConnection(ctx context.Context, in *apigatewaymanagementapi.DeleteConnectionInput, opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.DeleteConnectionOutput, error)
}

var _ connectionsAPI = (*apigatewaymanagementapi.Client)(nil)

// agentStore is what the agents' concern reads and writes in the store:
// connections, and the jobs whose wrap requests are outstanding at them.
type agentStore interface {
	GetConnection(ctx context.Context, id string) (*store.Connection, error)
	PutConnection(ctx context.Context, c *store.Connection) error
	DeleteConnection(ctx context.Context, id string) error
	ConnectionsInPool(ctx context.Context, pool string) ([]*store.Connection, error)
	GetJob(ctx context.Context, id string) (*store.Job, error)
	JobsInState(ctx context.Context, st store.State, before time.Time) ([]*store.Job, error)
	Save(ctx context.Context, j *store.Job) error
}

// jobRunner is what the agents' and the maintenance concerns ask of the
// rotation (the Engine): start, move on, fail and run a job.
type jobRunner interface {
	Start(ctx context.Context, r TriggerRequest) (*store.Job, store.Outcome, error)
	advance(ctx context.Context, j *store.Job, to store.State, note string) error
	fail(ctx context.Context, j *store.Job, reason string) error
	runOrHandOn(ctx context.Context, j *store.Job) error
}

var _ jobRunner = (*Engine)(nil)

// agentBroker is the agents' concern: the connections of the HSM pools'
// agents (hello, wrap_result, error, draining, hand-over, silence,
// supersede) and the messages sent to them. It holds the @connections
// client and the store's connections and jobs; the jobs it touches move
// on through the rotation (jobs).
type agentBroker struct {
	common
	conns connectionsAPI
	store agentStore
	jobs  jobRunner
	// handsOff: the engine has a Handoff (jobs run on in the worker).
	handsOff    bool
	skew        time.Duration
	maxAttempts int
}

// agents is the Engine's agents concern.
func (e *Engine) agents() *agentBroker {
	return &agentBroker{common: e.shared(), conns: e.Connections, store: e.Store, jobs: e,
		handsOff: e.Handoff != nil, skew: e.skew(), maxAttempts: e.maxAttempts()}
}

// Liveness is judged on the wall clock, not Engine.Now: tests move the
// engine's clock weeks ahead (deadlines, material expiry) while the agents'
// heartbeats keep real time.
func wallNow() time.Time { return time.Now().UTC() }

// lapse is how long c may stay silent before it counts as gone.
func lapse(c *store.Connection) time.Duration {
	if c.Lapse > 0 {
		return c.Lapse
	}
	return protocol.HeartbeatLapseFactor * protocol.DefaultHeartbeat
}

// silent reports whether c has not been heard from within its lapse.
func silent(c *store.Connection, now time.Time) bool {
	return !c.LastSeen.IsZero() && now.Sub(c.LastSeen) > lapse(c)
}

// usable reports whether c may be given a new wrap request: a verified
// hello, no failed post, not draining, not silent past its lapse.
func usable(c *store.Connection, now time.Time) bool {
	return c.Hello && c.GoneAt.IsZero() && c.DrainingAt.IsZero() && !silent(c, now)
}

// liveAgents lists connections of the pool that may take a request
// (usable: verified hello, not gone, draining or silent; pool.go).
func (b *agentBroker) liveAgents(ctx context.Context, g *groups.Group) ([]*store.Connection, error) {
	all, err := b.store.ConnectionsInPool(ctx, g.HSMPool)
	if err != nil {
		return nil, err
	}
	var out []*store.Connection
	for _, c := range all {
		if usable(c, wallNow()) && b.registered(g.HSMPool, c.AgentID) != nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// post sends msg (a sealed wrap_request of j) to connection c. gone: c
// answered Gone, and is marked gone so no request goes there again.
func (b *agentBroker) post(ctx context.Context, j *store.Job, c *store.Connection, msg []byte) (gone bool, err error) {
	_, err = b.conns.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(c.ID), Data: msg})
	var g *apigwtypes.GoneException
	if !errors.As(err, &g) {
		return false, err
	}
	b.log().WarnContext(ctx, "agent connection gone, trying another", "job", j.ID, "connection", c.ID, "agent", c.AgentID)
	// Mark, do not delete: $disconnect removes a dead connection; a live
	// one whose post failed clears the mark with its next heartbeat
	// instead of being forgotten while still connected.
	c.GoneAt = b.now()
	_ = b.store.PutConnection(ctx, c)
	return true, nil
}

// Outstanding counts the REQUESTED jobs of every connection (the load the
// spread rule balances, and what `keyferry status` shows).
func (b *agentBroker) Outstanding(ctx context.Context) (map[string]int, error) {
	jobs, err := b.store.JobsInState(ctx, store.StateRequested, b.now().Add(365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, j := range jobs {
		if j.ConnectionID != "" {
			out[j.ConnectionID]++
		}
	}
	return out, nil
}

// byLoad orders targets by outstanding wrap requests, fewest first, ties
// in random order (the spread rule).
func (b *agentBroker) byLoad(ctx context.Context, targets []*store.Connection) ([]*store.Connection, error) {
	if len(targets) < 2 {
		return targets, nil
	}
	load, err := b.Outstanding(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(targets)
	rand.Shuffle(len(out), func(i, k int) { out[i], out[k] = out[k], out[i] })
	slices.SortStableFunc(out, func(a, b *store.Connection) int { return load[a.ID] - load[b.ID] })
	return out, nil
}

// HandOver sends every wrap request outstanding at connection c to another
// agent of its pool: each such job goes back to PARAMS and is handed on
// (with a Handoff, the worker runs it; nothing waits here). why names the
// event (connection closed, draining, heartbeat lapsed). It returns how
// many jobs it handed over.
func (b *agentBroker) HandOver(ctx context.Context, c *store.Connection, why string) (int, error) {
	jobs, err := b.store.JobsInState(ctx, store.StateRequested, b.now().Add(365*24*time.Hour))
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, j := range jobs {
		if j.ConnectionID != c.ID {
			continue
		}
		note := fmt.Sprintf("agent %s %s with request %s outstanding: hand it to another agent of pool %s", c.AgentID, why, j.RequestID, c.Pool)
		j.ConnectionID = ""
		if err := b.jobs.advance(ctx, j, store.StateParams, note); err != nil {
			if !errors.Is(err, store.ErrConflict) { // the result came first: nothing to hand over
				errs = append(errs, err)
			}
			continue
		}
		n++
		if err := b.jobs.runOrHandOn(ctx, j); err != nil && !errors.Is(err, ErrNoAgent) {
			errs = append(errs, err)
		}
	}
	if n > 0 {
		b.log().InfoContext(ctx, "wrap requests handed over", "agent", c.AgentID, "pool", c.Pool, "connection", c.ID, "why", why, "jobs", n)
	}
	return n, errors.Join(errs...)
}

// ConnectionClosed is $disconnect's part: the connection's record is
// already deleted; its outstanding requests go to another agent.
func (b *agentBroker) ConnectionClosed(ctx context.Context, c *store.Connection) error {
	_, err := b.HandOver(ctx, c, "connection closed")
	return err
}

// ReapSilent marks the connections of pool that stayed silent past their
// heartbeat lapse as gone (a later message from one clears the mark) and
// hands their outstanding requests over. Any agent's heartbeat runs it for
// its own pool, and the sweeper for every pool, so a silent partition is
// detected within the lapse plus one heartbeat interval of a live peer.
func (b *agentBroker) ReapSilent(ctx context.Context, pool string) (int, error) {
	conns, err := b.store.ConnectionsInPool(ctx, pool)
	if err != nil {
		return 0, err
	}
	now := wallNow()
	var errs []error
	n := 0
	for _, c := range conns {
		if !c.GoneAt.IsZero() || !silent(c, now) {
			continue
		}
		c.GoneAt = now
		if err := b.store.PutConnection(ctx, c); err != nil {
			errs = append(errs, err)
			continue
		}
		b.log().WarnContext(ctx, "agent connection silent past its heartbeat lapse: treated as gone", "agent", c.AgentID, "pool", pool, "connection", c.ID,
			"last_seen", c.LastSeen.Format(time.RFC3339Nano), "lapse", lapse(c).String())
		k, err := b.HandOver(ctx, c, fmt.Sprintf("silent for %s (heartbeat lapse %s)", now.Sub(c.LastSeen).Round(time.Millisecond), lapse(c)))
		n += k
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// reapAllSilent is the sweeper's pass of ReapSilent over every pool.
func (b *agentBroker) reapAllSilent(ctx context.Context) error {
	if b.groups == nil {
		return nil
	}
	var errs []error
	for _, p := range b.groups.HSMPools {
		if _, err := b.ReapSilent(ctx, p.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// HandleDraining records an agent's draining notice (protocol.Draining,
// signed by its registered identity): the connection gets no new request,
// and the requests outstanding at it that the agent does not list as its
// own to finish are handed over at once.
func (b *agentBroker) HandleDraining(ctx context.Context, connID string, env *protocol.Envelope) error {
	c, err := b.store.GetConnection(ctx, connID)
	if err != nil {
		return reject("draining on unknown connection %s", connID)
	}
	v := b.registered(c.Pool, c.AgentID)
	if v == nil || env.Signer != c.AgentID {
		return reject("draining signed by %q on connection of agent %q: not a registered identity of pool %s", env.Signer, c.AgentID, c.Pool)
	}
	m, err := protocol.OpenDraining(env, v)
	if err != nil {
		return reject("draining from %s: %v", c.AgentID, err)
	}
	c.DrainingAt, c.LastSeen = b.now(), wallNow()
	if err := b.store.PutConnection(ctx, c); err != nil {
		return err
	}
	b.log().InfoContext(ctx, "agent draining", "agent", c.AgentID, "pool", c.Pool, "connection", connID, "finishing", len(m.Pending))
	jobs, err := b.store.JobsInState(ctx, store.StateRequested, b.now().Add(365*24*time.Hour))
	if err != nil {
		return err
	}
	var errs []error
	for _, j := range jobs {
		if j.ConnectionID != c.ID || slices.Contains(m.Pending, j.RequestID) {
			continue
		}
		j.ConnectionID = ""
		if err := b.jobs.advance(ctx, j, store.StateParams, fmt.Sprintf("agent %s draining without request %s: hand it to another agent of pool %s", c.AgentID, j.RequestID, c.Pool)); err != nil {
			if !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
			}
			continue
		}
		if err := b.jobs.runOrHandOn(ctx, j); err != nil && !errors.Is(err, ErrNoAgent) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
