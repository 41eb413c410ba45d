package engine

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
)

// registered returns the verifier of agent id in pool, or nil when the
// agent is not registered there (the key-group file's hsm_pools are the
// registry of agent identities allowed to answer).
func (b *agentBroker) registered(pool, id string) *protocol.Verifier {
	if b.groups == nil {
		return nil
	}
	p, ok := b.groups.Pool(pool)
	if !ok {
		return nil
	}
	for _, a := range p.Agents {
		if a.ID != id || strings.TrimSpace(a.PublicKey) == "" {
			continue
		}
		v, err := protocol.ParseVerifierPEM([]byte(a.PublicKey))
		if err != nil {
			return nil
		}
		return v
	}
	return nil
}

// Registered reports whether agent id is registered in pool.
func (b *agentBroker) Registered(pool, id string) bool { return b.registered(pool, id) != nil }

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// HandleHello verifies a hello against the registered identity of the
// connection's agent and records its capabilities; until then the
// connection gets no wrap_request.
func (b *agentBroker) HandleHello(ctx context.Context, connID string, env *protocol.Envelope) error {
	c, err := b.store.GetConnection(ctx, connID)
	if err != nil {
		return reject("hello on unknown connection %s: %v", connID, err)
	}
	v := b.registered(c.Pool, c.AgentID)
	if v == nil || env.Signer != c.AgentID {
		return reject("hello signed by %q on connection of agent %q (pool %s): not registered", env.Signer, c.AgentID, c.Pool)
	}
	h, err := protocol.OpenHello(env, v, b.now(), b.skew)
	if err != nil {
		return reject("hello from %s: %v", c.AgentID, err)
	}
	if h.AgentID != c.AgentID || h.HSMPool != c.Pool {
		return reject("hello names agent %q pool %q, connection is agent %q pool %q", h.AgentID, h.HSMPool, c.AgentID, c.Pool)
	}
	reg, _ := x509.MarshalPKIXPublicKey(v.PublicKey())
	if !bytes.Equal(reg, h.IdentityPublicKey) {
		return reject("hello identity key of %s differs from the registered one", c.AgentID)
	}
	c.Hello = true
	c.Identity = h.IdentityPublicKey
	c.Capabilities = c.Capabilities[:0]
	for _, cp := range h.Capabilities {
		sc := store.Capability{KeySpec: string(cp.KeySpec)}
		for _, a := range cp.Algorithms {
			sc.Algorithms = append(sc.Algorithms, string(a))
		}
		for _, w := range cp.WrappingKeySpecs {
			sc.WrappingKeySpecs = append(sc.WrappingKeySpecs, string(w))
		}
		c.Capabilities = append(c.Capabilities, sc)
	}
	c.LastSeen = b.now()
	c.Lapse = h.HeartbeatLapse()
	if err := b.store.PutConnection(ctx, c); err != nil {
		return err
	}
	b.log().InfoContext(ctx, "agent hello", "agent", c.AgentID, "pool", c.Pool, "connection", connID, "version", h.Version, "capabilities", len(h.Capabilities), "pending", len(h.Pending))
	if n, err := b.supersede(ctx, c, h.Pending); err != nil {
		// The hello succeeded; an earlier connection not closed here is
		// marked gone or closes by itself ($disconnect hands over).
		b.log().WarnContext(ctx, "closing the agent's earlier connections", "agent", c.AgentID, "pool", c.Pool, "closed", n, "error", err.Error())
	}
	if n, err := b.resumeForAgent(ctx, c, h.Pending); err != nil {
		// The hello itself succeeded; jobs not resumed here are the sweeper's.
		b.log().WarnContext(ctx, "resuming waiting jobs", "pool", c.Pool, "resumed", n, "error", err.Error())
	} else if n > 0 {
		b.log().InfoContext(ctx, "resumed jobs waiting for an agent", "pool", c.Pool, "resumed", n)
	}
	return nil
}

// wrapResult verifies a wrap_result (registered agent signature, live job
// awaiting exactly this request, nonce, key, spec and algorithm) and
// records it (acceptWrapResult); the Engine hands the job on
// (HandleWrapResult). Anything else is rejected with ErrRejected, logged,
// and changes nothing.
func (b *agentBroker) wrapResult(ctx context.Context, connID string, env *protocol.Envelope) (*store.Job, error) {
	j, err := b.acceptWrapResult(ctx, connID, env)
	if err != nil {
		b.log().WarnContext(ctx, "wrap_result rejected", "connection", connID, "signer", env.Signer, "error", err.Error())
		return nil, err
	}
	return j, nil
}

func (b *agentBroker) acceptWrapResult(ctx context.Context, connID string, env *protocol.Envelope) (*store.Job, error) {
	c, err := b.store.GetConnection(ctx, connID)
	if err != nil {
		return nil, reject("wrap_result on unknown connection %s", connID)
	}
	v := b.registered(c.Pool, c.AgentID)
	if v == nil || env.Signer != c.AgentID {
		return nil, reject("wrap_result signer %q on connection of agent %q: not a registered identity of pool %s", env.Signer, c.AgentID, c.Pool)
	}
	res, err := protocol.OpenWrapResult(env, v, b.now(), b.skew)
	if err != nil {
		return nil, reject("wrap_result from %s: %v", c.AgentID, err)
	}
	j, err := b.store.GetJob(ctx, res.JobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, reject("wrap_result for unknown job %s", res.JobID)
	} else if err != nil {
		return nil, err
	}
	switch {
	case j.State != store.StateRequested:
		return nil, reject("wrap_result for job %s in state %s (replayed or late)", j.ID, j.State)
	case res.AgentID != c.AgentID || res.AgentID != j.AgentID:
		return nil, reject("wrap_result from agent %s, request went to %s", res.AgentID, j.AgentID)
	}
	g, err := b.group(j.Group)
	if err != nil {
		return nil, err
	}
	// One check of a result against its request, on both sides: request,
	// job, nonce, key, spec, algorithm, rewrap label, challenge MAC and the
	// wrapped blob's size for the wrapping key.
	req := wrapRequest(regionalGroup(g, j), j, j.RequestID, j.Nonce, j.Challenge)
	if err := res.Matches(&req); err != nil {
		return nil, reject("wrap_result for job %s does not answer its request (replayed, stale or malformed): %v", j.ID, err)
	}
	j.WrappedMaterial, j.PublicKey, j.ChallengeMAC = res.WrappedMaterial, res.PublicKey, res.ChallengeMAC
	j.HSMLabel, j.HSMKeyID = res.HSMLabel, res.HSMKeyID
	if err := b.jobs.advance(ctx, j, store.StateResult, "wrap_result from "+res.AgentID); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, reject("wrap_result for job %s raced with another delivery (replay)", j.ID)
		}
		return nil, err
	}
	return j, nil
}

// RefusalGroupUnknown is the Group dimension of a WrapRefusals datapoint
// whose error message names no known job.
const RefusalGroupUnknown = "-"

// HandleAgentError records an agent's refusal of a wrap_request: the job
// fails with the agent's code and message.
func (b *agentBroker) HandleAgentError(ctx context.Context, connID string, env *protocol.Envelope) error {
	c, err := b.store.GetConnection(ctx, connID)
	if err != nil {
		return reject("error on unknown connection %s", connID)
	}
	v := b.registered(c.Pool, c.AgentID)
	if v == nil || env.Signer != c.AgentID {
		return reject("error message signer %q not registered in pool %s", env.Signer, c.Pool)
	}
	m, err := protocol.OpenError(env, v)
	if err != nil {
		return reject("error message from %s: %v", c.AgentID, err)
	}
	b.log().WarnContext(ctx, "agent error", "agent", c.AgentID, "job", m.JobID, "request", m.RequestID, "code", string(m.Code), "message", m.Message)
	// Every authenticated refusal counts, matched to a job or not: a stream
	// of refusals for unknown jobs is itself worth an alarm.
	var j *store.Job
	group := RefusalGroupUnknown
	if m.JobID != "" {
		if j, err = b.store.GetJob(ctx, m.JobID); err == nil {
			group = j.Group
		}
	}
	b.metrics.Emit(metrics.WrapRefusals, 1, metrics.Count, map[string]string{"Group": group, "Code": string(m.Code)})
	if m.JobID == "" {
		return nil
	}
	if j == nil {
		return reject("error for unknown job %s", m.JobID)
	}
	if j.State != store.StateRequested || j.RequestID != m.RequestID || j.AgentID != c.AgentID {
		return reject("error for job %s request %s does not match its pending request", j.ID, m.RequestID)
	}
	if m.Code == protocol.CodeReplayed {
		// A duplicated delivery (API Gateway delivers at least once): the
		// agent refused the copy because it already accepted the original,
		// whose result is on its way. The job keeps waiting; the sweeper
		// re-asks if no result comes.
		b.log().InfoContext(ctx, "agent refused a duplicate delivery; waiting for the original's result", "job", j.ID, "request", m.RequestID)
		return nil
	}
	reason := fmt.Sprintf("agent %s refused request %s: %s: %s", c.AgentID, m.RequestID, m.Code, m.Message)
	switch m.Code {
	case protocol.CodeHSMError, protocol.CodeInternal, protocol.CodeRateLimited, protocol.CodeExpired:
		// Transient on the agent's side (the HSM failed twice in a row, the
		// agent was stopping, its rate limit, a request delivered late or
		// judged by a skewed clock): ask again, with fresh timestamps,
		// within the job's attempts. A rate limit waits for the sweeper
		// (the job's deadline); the others are asked again at once.
		if j.Attempts+1 < b.maxAttempts {
			j.Attempts++
			if err := b.jobs.advance(ctx, j, store.StateKeyReady, reason+": ask again"); err != nil {
				return err
			}
			if m.Code == protocol.CodeRateLimited {
				return nil
			}
			return b.jobs.runOrHandOn(ctx, j)
		}
		reason += fmt.Sprintf(" (after %d attempts)", j.Attempts+1)
	}
	return b.jobs.fail(ctx, j, reason)
}
