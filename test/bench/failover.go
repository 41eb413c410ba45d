package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/sandbox"
)

// Failover modes of PoolFailover.
const (
	// FailoverKilled: agent A is SIGKILLed holding the request (its result
	// was lost at the gateway); the connection's close hands it over.
	FailoverKilled = "killed"
	// FailoverPartitioned: agent A goes silent without a FIN (its process
	// frozen, SIGSTOP) before the request reaches it; its heartbeat lapse
	// (3 intervals) hands it over.
	FailoverPartitioned = "partitioned"
)

// ResultDrop is a gateway fault hook (sandbox.Options.GatewayFault) that
// loses the wrap_results of one connection: the request stays outstanding
// at an agent that did answer.
type ResultDrop struct {
	conn    atomic.Pointer[string]
	dropped atomic.Int64
}

// Fault implements apigwemu.Fault.
func (d *ResultDrop) Fault(p apigwemu.FaultPoint) apigwemu.FaultAction {
	if c := d.conn.Load(); c != nil && p.Direction == apigwemu.Inbound && p.ConnectionID == *c &&
		bytes.Contains(p.Data, []byte(`"`+string(protocol.ActionWrapResult)+`"`)) {
		d.dropped.Add(1)
		return apigwemu.Drop
	}
	return apigwemu.Deliver
}

// PoolFailover measures failover time on a sandbox whose pool runs two
// agents (Options.Agents 2, drop installed as its GatewayFault): in each
// of trials, a rotation of group is sent to agent A (agent B marked
// draining until then), A is lost the way mode says, and the time from
// the loss (the SIGKILL, or the freeze) to the job's wrap_result from B is
// one figure. Every job must SUCCEED via B; A is back before the next trial.
func PoolFailover(ctx context.Context, sb *sandbox.Sandbox, drop *ResultDrop, group, mode string, trials int) ([]time.Duration, error) {
	if len(sb.PoolAgents) == 0 {
		return nil, fmt.Errorf("bench: failover needs a pool of two agents (sandbox.Options.Agents)")
	}
	if mode != FailoverKilled && mode != FailoverPartitioned {
		return nil, fmt.Errorf("bench: failover mode %q: want %q or %q", mode, FailoverKilled, FailoverPartitioned)
	}
	a, b := sandbox.AgentID, sb.PoolAgents[0].ID
	var out []time.Duration
	for i := 0; i < trials; i++ {
		if err := sb.WaitAgents(ctx, time.Minute); err != nil {
			return out, err
		}
		d, err := failoverTrial(ctx, sb, drop, group, mode, fmt.Sprintf("failover-%s-%d-%d", mode, time.Now().UnixNano(), i), a, b)
		if err != nil {
			return out, fmt.Errorf("bench: failover %s trial %d: %w", mode, i+1, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func failoverTrial(ctx context.Context, sb *sandbox.Sandbox, drop *ResultDrop, group, mode, id, a, b string) (time.Duration, error) {
	st := sb.Deps.Store
	ac, err := connOf(ctx, st, a)
	if err != nil {
		return 0, err
	}
	pid := sb.AgentPID()
	var t0 time.Time
	dropped := drop.dropped.Load()
	switch mode {
	case FailoverKilled:
		drop.conn.Store(&ac.ID)
		defer drop.conn.Store(nil)
	case FailoverPartitioned:
		if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
			return 0, err
		}
		t0 = time.Now()
		defer syscall.Kill(-pid, syscall.SIGCONT)
	}
	if err := setDraining(ctx, st, b, true); err != nil {
		return 0, err
	}
	res, err := sb.Trigger(ctx, group, "schedule", id)
	if err != nil || res.JobID == "" {
		setDraining(ctx, st, b, false)
		return 0, fmt.Errorf("trigger %s: %v %s %s", group, err, res.Outcome, res.Reason)
	}
	j, err := waitState(ctx, st, res.JobID, store.StateRequested)
	if err != nil {
		setDraining(ctx, st, b, false)
		return 0, err
	}
	if j.AgentID != a {
		setDraining(ctx, st, b, false)
		return 0, fmt.Errorf("job %s went to %s with %s draining, want %s", j.ID, j.AgentID, b, a)
	}
	if mode == FailoverKilled {
		// A answers; the gateway loses it.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("agent %s never wrapped job %s", a, j.ID)
			}
			if drop.dropped.Load() > dropped {
				break
			}
		}
	}
	if err := setDraining(ctx, st, b, false); err != nil {
		return 0, err
	}
	if mode == FailoverKilled {
		t0 = time.Now()
		if err := sb.KillAgent(); err != nil {
			return 0, err
		}
	}
	done, err := sb.WaitJob(ctx, j.ID, 2*time.Minute)
	if err != nil {
		return 0, err
	}
	if done.State != store.StateSucceeded || done.AgentID != b {
		return 0, fmt.Errorf("job %s ended %s via %s (%s), want SUCCEEDED via %s", done.ID, done.State, done.AgentID, done.Reason, b)
	}
	var at time.Time
	for _, h := range done.History {
		if h.To == store.StateResult && strings.Contains(h.Note, b) {
			at = h.At
		}
	}
	if at.IsZero() {
		return 0, fmt.Errorf("job %s: no wrap_result from %s in its history", done.ID, b)
	}
	if mode == FailoverKilled {
		if err := sb.StartAgent(ctx); err != nil {
			return 0, err
		}
	}
	return at.Sub(t0), nil
}

// connOf is agent id's live, hello'd connection.
func connOf(ctx context.Context, st *store.Store, id string) (*store.Connection, error) {
	cs, err := st.ConnectionsInPool(ctx, sandbox.Pool)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.AgentID == id && c.Hello && c.GoneAt.IsZero() {
			return c, nil
		}
	}
	return nil, fmt.Errorf("agent %s not connected", id)
}

// setDraining marks agent id's connection draining (or not) in the store
// and reads it back until it holds (a heartbeat of the agent may have
// written the record it read before this write).
func setDraining(ctx context.Context, st *store.Store, id string, on bool) error {
	for try := 0; try < 10; try++ {
		c, err := connOf(ctx, st, id)
		if err != nil {
			return err
		}
		if on == !c.DrainingAt.IsZero() && try > 0 {
			return nil
		}
		c.DrainingAt = time.Time{}
		if on {
			c.DrainingAt = time.Now()
		}
		if err := st.PutConnection(ctx, c); err != nil {
			return err
		}
		time.Sleep(30 * time.Millisecond)
	}
	return fmt.Errorf("agent %s: draining %v did not hold", id, on)
}

func waitState(ctx context.Context, st *store.Store, id string, want store.State) (*store.Job, error) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		j, err := st.GetJob(ctx, id)
		if err == nil && j.State == want {
			return j, nil
		}
		if err == nil && sandbox.Terminal(j.State) {
			return j, fmt.Errorf("job %s ended %s (%s) before %s", id, j.State, j.Reason, want)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return j, fmt.Errorf("job %s not %s within 30 s: %v", id, want, err)
		}
	}
}
