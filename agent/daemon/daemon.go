package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/metrics"
	"github.com/keyferry/keyferry/agent/policy"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// HSM is the part of the HSM layer the daemon uses: the five calls it
// makes on the token. *hsm.HSM (cgo, PKCS#11) is the implementation
// (asserted in hsm_cgo.go); the daemon itself compiles and tests without
// cgo, since everything it names in package hsm (Key, GenerateOption,
// Capability, the error sentinels, Label) is plain Go.
type HSM interface {
	Generate(ctx context.Context, label string, spec keyspec.Spec, opts ...hsm.GenerateOption) (*hsm.Key, error)
	Find(ctx context.Context, label string) (*hsm.Key, error)
	Wrap(ctx context.Context, label string, wrappingKeyDER []byte, alg keyspec.WrappingAlgorithm) ([]byte, error)
	PublicKeyDER(ctx context.Context, label string) ([]byte, error)
	HMAC(ctx context.Context, label string, data []byte) ([]byte, error)
}

// Identity is the agent's HSM-resident signing key.
type Identity interface {
	protocol.Signer
	PublicDER() []byte
}

// Auditor appends a record to the agent's audit log (audit.Log). A record
// is on disk (fsynced) when Append returns nil.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

var _ Auditor = (*audit.Log)(nil)

// Sender queues a sealed message on the tunnel.
type Sender interface {
	Send(msg []byte) error
}

// Config wires a Daemon.
type Config struct {
	AgentID string
	Version string
	// HSMPool names the HSM (token) this agent serves, sent in hello.
	HSMPool string
	// PoolSize bounds parallel HSM work (the session pool size).
	PoolSize     int
	HSM          HSM
	Identity     Identity
	Capabilities []protocol.Capability
	Policy       *policy.Policy
	Audit        Auditor
	Metrics      *metrics.Metrics
	Logger       *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Heartbeat is the tunnel's heartbeat interval, told to the control
	// plane in hello (its bound for a silent partition).
	Heartbeat time.Duration
}

// Daemon handles messages from the control plane.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	sem     chan struct{}
	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing atomic.Bool

	mu      sync.Mutex
	sender  Sender
	pending map[string]struct{}
	genMu   sync.Mutex
}

// New checks cfg and returns a Daemon.
func New(cfg Config) (*Daemon, error) {
	switch {
	case cfg.AgentID == "" || cfg.HSM == nil || cfg.Identity == nil || cfg.Policy == nil || cfg.Audit == nil:
		return nil, errors.New("daemon: AgentID, HSM, Identity, Policy and Audit are required")
	case cfg.PoolSize < 1:
		return nil, errors.New("daemon: PoolSize must be >= 1")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.HSMPool == "" {
		cfg.HSMPool = "default"
	}
	base, cancel := context.WithCancel(context.Background())
	return &Daemon{cfg: cfg, log: cfg.Logger.With("component", "daemon"), sem: make(chan struct{}, cfg.PoolSize),
		base: base, cancel: cancel, pending: map[string]struct{}{}}, nil
}

// SetSender connects the daemon to the tunnel.
func (d *Daemon) SetSender(s Sender) {
	d.mu.Lock()
	d.sender = s
	d.mu.Unlock()
}

func (d *Daemon) send(msg []byte) error {
	d.mu.Lock()
	s := d.sender
	d.mu.Unlock()
	if s == nil {
		return errors.New("daemon: no tunnel")
	}
	return s.Send(msg)
}

// Pending returns the ids of accepted requests whose result is not yet queued.
func (d *Daemon) Pending() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.pending))
	for id := range d.pending {
		out = append(out, id)
	}
	slices.Sort(out)
	if len(out) > protocol.MaxPending {
		out = out[:protocol.MaxPending]
	}
	return out
}

// Hello builds the signed hello sent first on every connection.
func (d *Daemon) Hello(ctx context.Context) ([]byte, error) {
	h := protocol.Hello{
		AgentID: d.cfg.AgentID, Version: d.cfg.Version, HSMPool: d.cfg.HSMPool,
		IdentityPublicKey: d.cfg.Identity.PublicDER(), Capabilities: d.cfg.Capabilities,
		Pending: d.Pending(), SentAt: d.cfg.Now().UTC(), HeartbeatSeconds: int(d.cfg.Heartbeat / time.Second),
	}
	return protocol.Seal(ctx, d.cfg.Identity, d.cfg.AgentID, protocol.ActionHello, h)
}

// Heartbeat builds an (unsigned) heartbeat; it costs no HSM session.
func (d *Daemon) Heartbeat(ctx context.Context, seq uint64) ([]byte, error) {
	d.mu.Lock()
	n := len(d.pending)
	d.mu.Unlock()
	return protocol.Seal(ctx, nil, "", protocol.ActionHeartbeat, protocol.Heartbeat{
		AgentID: d.cfg.AgentID, Seq: seq, SentAt: d.cfg.Now().UTC(), InFlight: n,
	})
}

// Drain stops accepting requests, tells the control plane (a signed
// protocol.Draining listing the requests it will still finish, so the
// others go to another agent of the pool at once) and waits for in-flight
// wraps (their results are queued on the tunnel) or ctx.
func (d *Daemon) Drain(ctx context.Context) error {
	d.mu.Lock() // no wg.Add can follow: Handle adds under d.mu after checking closing
	d.closing.Store(true)
	d.mu.Unlock()
	if b, err := protocol.Seal(ctx, d.cfg.Identity, d.cfg.AgentID, protocol.ActionDraining,
		protocol.Draining{AgentID: d.cfg.AgentID, Pending: d.Pending(), SentAt: d.cfg.Now().UTC()}); err != nil {
		d.log.Error("could not seal the draining notice", "err", err)
	} else if err := d.send(b); err != nil {
		d.log.Warn("could not queue the draining notice", "err", err)
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		d.cancel()
		return fmt.Errorf("daemon: drain: %d wraps still running: %w", len(d.Pending()), ctx.Err())
	}
}

// Handle processes one inbound message (tunnel.Config.Handle). It runs on
// the tunnel's reader, so it only decodes: policy checks, audit writes
// (fsynced, HSM-signed) and answers run on their own goroutine, and the
// reader goes straight back to reading (and answering pings).
func (d *Daemon) Handle(_ context.Context, msg []byte) {
	env, err := protocol.Decode(msg)
	if err != nil {
		if gw, ok := gatewayNotice(msg); ok {
			// API Gateway's own notices ("Internal server error",
			// "Forbidden", ...) are not protocol messages: answering them
			// with an error would start a loop through the gateway.
			d.log.Warn("API Gateway notice", "message", truncate(gw, 200))
			d.cfg.Metrics.Refusal("gateway_notice")
			return
		}
		d.refuseAsync(nil, &policy.Refusal{Reason: policy.ReasonBadRequest, Code: protocol.CodeFor(err), Msg: "undecodable message", Err: err})
		return
	}
	switch env.Action {
	case protocol.ActionHeartbeat:
		d.log.Debug("heartbeat from control plane")
		return
	case protocol.ActionError:
		d.log.Warn("error message from control plane", "signer", env.Signer)
		return
	case protocol.ActionWrapRequest:
	default:
		d.refuseAsync(nil, &policy.Refusal{Reason: policy.ReasonBadRequest, Code: protocol.CodeBadRequest,
			Msg: fmt.Sprintf("the agent does not accept %q messages", env.Action)})
		return
	}
	d.mu.Lock() // no wg.Add can follow Drain: it sets closing under d.mu
	if d.closing.Load() {
		d.mu.Unlock()
		d.refuseAsync(nil, &policy.Refusal{Reason: "shutting_down", Code: protocol.CodeInternal, Msg: "agent is shutting down; retry"})
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		d.admit(env)
	}()
}

// refuseAsync answers a refusal off the reader goroutine.
func (d *Daemon) refuseAsync(req *protocol.WrapRequest, r *policy.Refusal) {
	go d.refuse(d.base, req, r)
}

// admit checks a wrap request against policy, records its acceptance and
// runs it. A request whose acceptance cannot be recorded is not run.
func (d *Daemon) admit(env *protocol.Envelope) {
	ctx := d.base
	req, err := d.cfg.Policy.Check(ctx, env)
	if err != nil {
		r, ok := policy.AsRefusal(err)
		if !ok {
			r = &policy.Refusal{Reason: "internal", Code: protocol.CodeInternal, Msg: "policy error", Err: err}
		}
		d.refuse(ctx, req, r)
		return
	}
	d.mu.Lock()
	d.pending[req.RequestID] = struct{}{}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.pending, req.RequestID)
		d.mu.Unlock()
	}()
	if err := d.auditReq(ctx, audit.EventRequest, "accepted", "", "", req, nil); err != nil {
		d.fail(ctx, req, protocol.CodeInternal, "audit write failed; request not run", err)
		return
	}
	d.cfg.Metrics.Request("accepted")
	d.log.Info("wrap request accepted", "request_id", req.RequestID, "job_id", req.JobID, "group", req.Group,
		"key_spec", req.KeySpec, "operation", req.Operation, "key_arn", req.KeyARN)
	d.cfg.Metrics.InFlight(1)
	defer d.cfg.Metrics.InFlight(-1)
	d.process(req)
}

// refuse audits, counts and answers a refusal. req may be nil.
func (d *Daemon) refuse(ctx context.Context, req *protocol.WrapRequest, r *policy.Refusal) {
	d.cfg.Metrics.Request("refused")
	d.cfg.Metrics.Refusal(string(r.Reason))
	msg := r.Msg
	if r.Err != nil {
		msg = r.Msg + ": " + r.Err.Error()
	}
	_ = d.auditReq(ctx, audit.EventRefusal, "refused", string(r.Reason), msg, req, nil) // logged; the refusal goes out regardless
	attrs := []any{"reason", r.Reason, "code", r.Code, "err", msg}
	if req != nil {
		attrs = append(attrs, "request_id", req.RequestID, "job_id", req.JobID)
	}
	d.log.Warn("request refused", attrs...)
	e := protocol.Error{AgentID: d.cfg.AgentID, Code: r.Code, Message: truncate(msg, protocol.MaxErrorMessageBytes)}
	if req != nil {
		e.RequestID, e.JobID = req.RequestID, req.JobID
	}
	d.sendError(ctx, e)
}

func (d *Daemon) sendError(ctx context.Context, e protocol.Error) {
	b, err := protocol.Seal(ctx, d.cfg.Identity, d.cfg.AgentID, protocol.ActionError, e)
	if err == nil {
		err = d.send(b)
	}
	if err != nil {
		d.log.Error("could not send error message", "request_id", e.RequestID, "err", err)
	}
}

// auditReq appends one record. A failure is logged loudly and returned: the
// caller must not act on what it could not record (invariant 4).
func (d *Daemon) auditReq(ctx context.Context, ev audit.Event, decision, reason, msg string, req *protocol.WrapRequest, fields map[string]string) error {
	r := audit.Record{Event: ev, Decision: decision, Reason: reason, Message: truncate(msg, 1024), Fields: fields}
	if req != nil {
		r.RequestID, r.JobID, r.Account, r.Region, r.Group = req.RequestID, req.JobID, req.Account, req.Region, req.Group
		r.KeyARN, r.KeySpec, r.HSMLabel, r.Algorithm = req.KeyARN, string(req.KeySpec), req.HSMLabel, string(req.WrappingAlgorithm)
	}
	if _, err := d.cfg.Audit.Append(ctx, r); err != nil {
		// An agent that cannot audit must not act silently: log loudly.
		d.log.Error("AUDIT WRITE FAILED", "err", err, "event", ev, "request_id", r.RequestID)
		return fmt.Errorf("daemon: audit %s record: %w", ev, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// gatewayNotice recognises the JSON API Gateway itself sends a client when
// a route fails: {"message": ..., "connectionId": ..., "requestId": ...}.
func gatewayNotice(msg []byte) (string, bool) {
	var n struct {
		Message      *string `json:"message"`
		ConnectionID *string `json:"connectionId"`
		RequestID    *string `json:"requestId"`
		Action       *string `json:"action"`
	}
	if len(msg) > 4096 || json.Unmarshal(msg, &n) != nil || n.Message == nil || n.Action != nil || (n.ConnectionID == nil && n.RequestID == nil) {
		return "", false
	}
	return *n.Message, true
}
