package soak

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/sandbox"
)

// Config sizes a soak run.
type Config struct {
	// Duration of the fault phase (the audit comes after); at most 8 min.
	Duration time.Duration
	// Seed makes the fault schedule reproducible (given the same timing).
	Seed uint64
	// Rotations stops the fault phase early after this many triggers (0 = no limit).
	Rotations int
	// Workers trigger rotations concurrently (default 3).
	Workers int
	// Dir keeps the sandbox's files (logs, token, audit); empty = temp, removed.
	Dir string
	// AgentBinary is a prebuilt keyferry-agent (empty builds it); build it
	// with -tags hsmfault for the HSM faults.
	AgentBinary string
	// Progress receives one line per event (nil = silent).
	Progress io.Writer
}

// DefaultDuration is the fault phase of `make soak`.
const DefaultDuration = 5 * time.Minute

// MaxDuration bounds the fault phase. The audit after it takes 1 to 3
// minutes, so a run stays within about 10 minutes.
const MaxDuration = 8 * time.Minute

// Report is the JSON summary.
type Report struct {
	Seed                uint64         `json:"seed"`
	DurationSeconds     float64        `json:"duration_seconds"`
	Rotations           int            `json:"rotations"`
	FaultsInjected      map[string]int `json:"faults_injected"`
	FaultsTotal         int            `json:"faults_total"`
	JobsSucceeded       int            `json:"jobs_succeeded"`
	JobsFailed          int            `json:"jobs_failed"`
	JobsSkipped         int            `json:"jobs_skipped"`
	FailureReasons      map[string]int `json:"failure_reasons,omitempty"`
	GenerationsChecked  int            `json:"generations_checked"`
	KeysChecked         int            `json:"keys_checked"`
	AuditRecords        int            `json:"audit_records"`
	Reconnects          int            `json:"reconnects"`
	BytesScanned        int            `json:"plaintext_bytes_scanned"`
	MaterialsScanned    int            `json:"plaintext_materials_scanned"`
	InvariantViolations []string       `json:"invariant_violations"`
}

// Run brings up a sandbox with fault hooks, rotates under faults, audits.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Duration > MaxDuration {
		return nil, fmt.Errorf("soak: duration %s exceeds %s", cfg.Duration, MaxDuration)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 3
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	keepDir := cfg.Dir != ""
	if !keepDir {
		d, err := os.MkdirTemp("", "keyferry-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	cpLog, err := os.OpenFile(filepath.Join(cfg.Dir, "control-plane.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer cpLog.Close()

	inj := newInjector(cfg.Seed)
	start := time.Now()
	sb, err := sandbox.Start(ctx, sandbox.Options{
		Dir: cfg.Dir, AgentBinary: cfg.AgentBinary,
		// HSM faults come from inside the agent: its hsmfault build wraps
		// the PKCS#11 module and fails C_WrapKey at random.
		AgentBuildTags: []string{"hsmfault"},
		AgentEnv:       []string{"KEYFERRY_HSM_FAULTS=device_error=0.03,session_loss=0.03"},
		JobTimeout:     8 * time.Second, RequestTTL: 6 * time.Second,
		// A pool of two agents on the one token; a heartbeat of 1 s hands
		// a silently partitioned agent's requests over within about 4 s.
		Agents: 2, Heartbeat: time.Second,
		Log:      slog.New(slog.NewJSONHandler(cpLog, &slog.HandlerOptions{Level: slog.LevelDebug})),
		KMSFault: inj.kms, GatewayFault: inj.gateway, DynamoFault: inj.dynamo,
	})
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	r := &soakRun{cfg: cfg, sb: sb, inj: inj, out: progress, jobs: map[string]bool{}, busy: map[string]bool{}}
	r.rep.Seed = cfg.Seed
	// Clock skew between cloud and agent: the control plane's clock moves.
	var skew atomic.Int64
	sb.Deps.Engine.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	r.skew = &skew
	// The control plane's tolerance for agent clocks (default 2 min) also
	// pads a REQUESTED job's deadline; a short one keeps the final sweep
	// short. The +-5 min skew faults exceed it either way.
	sb.Deps.Engine.Skew = 10 * time.Second
	if sb.Deps.Engine.MaxAttempts == 0 {
		sb.Deps.Engine.MaxAttempts = 3
	}
	mgmt := apigatewaymanagementapi.NewFromConfig(aws.Config{Region: sandbox.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: sandbox.CloudAccessKey, SecretAccessKey: sandbox.CloudSecretKey}, nil
		}),
		BaseEndpoint: aws.String(sb.Endpoints.Management)})
	inj.onConnDrop = func(id string) {
		time.Sleep(time.Duration(inj.intn(50)) * time.Millisecond)
		_, _ = mgmt.DeleteConnection(context.Background(), &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)})
		r.noteDrop(id)
	}
	// Import parameters expire between wrap and import: the tokens in
	// flight expire, the cloud's clock stays (moving KMS's clock a day
	// ahead of the control plane's is no fault a real region has).
	inj.onExpire = func() { sb.Emulator.ExpireImportTokens() }

	inj.enabled.Store(true)
	r.faultPhase(ctx)
	inj.enabled.Store(false)
	skew.Store(0)
	r.audit(ctx)
	r.countHSMFaults()
	r.rep.FaultsInjected = inj.snapshot()
	for _, v := range r.rep.FaultsInjected {
		r.rep.FaultsTotal += v
	}
	r.rep.DurationSeconds = time.Since(start).Seconds()
	if r.rep.InvariantViolations == nil {
		r.rep.InvariantViolations = []string{}
	}
	return &r.rep, nil
}

type soakRun struct {
	cfg  Config
	sb   *sandbox.Sandbox
	inj  *injector
	out  io.Writer
	skew *atomic.Int64

	mu      sync.Mutex
	rep     Report
	jobs    map[string]bool
	busy    map[string]bool // groups a worker is rotating now
	dropped []string        // connections the gateway dropped (DeleteConnection)
	outMu   sync.Mutex
	agentMu sync.Mutex // serialises kill/restart with the final checks
}

func (r *soakRun) logf(format string, args ...any) {
	r.outMu.Lock()
	fmt.Fprintf(r.out, "soak: "+format+"\n", args...)
	r.outMu.Unlock()
}

func (r *soakRun) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.rep.InvariantViolations = append(r.rep.InvariantViolations, msg)
	r.mu.Unlock()
	r.logf("VIOLATION %s", msg)
}

func (r *soakRun) noteDrop(id string) {
	r.mu.Lock()
	r.dropped = append(r.dropped, id)
	r.mu.Unlock()
}

// faultPhase triggers rotations from workers while a chaos loop kills the
// agent, drops connections, skews clocks and starts throttling storms; a
// sweeper runs keepalive as the scheduled Lambda would.
func (r *soakRun) faultPhase(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var triggered atomic.Int64
	for w := range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if r.cfg.Rotations > 0 && triggered.Add(1) > int64(r.cfg.Rotations) {
					cancel()
					return
				}
				r.rotateOnce(ctx, fmt.Sprintf("soak-%d-w%d-%d", r.cfg.Seed, w, n))
			}
		}()
	}
	wg.Add(2)
	go func() { defer wg.Done(); r.chaos(ctx) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = r.sb.Deps.Keepalive(ctx, nil)
			}
		}
	}()
	wg.Wait()
}

// rotateOnce triggers one rotation and waits for its job. Workers mostly
// take a group no other worker is rotating (a trigger for a busy group is
// only skipped); one in ten goes to any group, so concurrent triggers for
// one group (one runs, the other is SKIPPED) stay exercised.
func (r *soakRun) rotateOnce(ctx context.Context, id string) {
	all := r.sb.Groups.Groups
	r.mu.Lock()
	var free []int
	for i, g := range all {
		if !r.busy[g.Name] {
			free = append(free, i)
		}
	}
	r.mu.Unlock()
	pick := r.inj.intn(len(all))
	if len(free) > 0 && r.inj.roll() >= 0.1 {
		pick = free[r.inj.intn(len(free))]
	}
	g := all[pick]
	jobID := store.JobIDForTrigger(g.Name, "schedule/"+id)
	r.mu.Lock()
	r.jobs[jobID] = true
	r.rep.Rotations++
	mine := !r.busy[g.Name]
	r.busy[g.Name] = true
	r.mu.Unlock()
	if mine {
		defer func() { r.mu.Lock(); delete(r.busy, g.Name); r.mu.Unlock() }()
	}
	dup := r.inj.roll() < 0.1
	if dup {
		r.inj.count(FaultDuplicateTrigger)
		go func() { _, _ = r.sb.Trigger(ctx, g.Name, "schedule", id) }()
	}
	res, err := r.sb.Trigger(ctx, g.Name, "schedule", id)
	if err != nil {
		r.logf("trigger %s: %v", g.Name, err)
	} else if res.JobID != "" && res.JobID != jobID {
		r.violate("trigger %s/%s named job %s, want %s", g.Name, id, res.JobID, jobID)
	}
	if j, err := r.sb.WaitJob(ctx, jobID, 40*time.Second); err == nil {
		r.logf("%s %s %s %s", g.Name, j.ID[:8], j.State, j.Reason)
	}
}

func (r *soakRun) chaos(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(3000+r.inj.intn(4000)) * time.Millisecond):
		}
		switch r.inj.intn(6) {
		case 0:
			r.inj.count(FaultAgentKill)
			r.logf("chaos: SIGKILL agent")
			r.agentMu.Lock()
			_ = r.sb.KillAgent()
			time.Sleep(time.Duration(r.inj.intn(1500)) * time.Millisecond)
			if err := r.sb.StartAgent(context.Background()); err != nil {
				r.violate("agent restart after SIGKILL: %v", err)
			}
			r.agentMu.Unlock()
			r.waitReconnect(ctx, "after SIGKILL")
		case 1:
			r.inj.storm(time.Duration(1000+r.inj.intn(2000)) * time.Millisecond)
			r.logf("chaos: throttling storm")
		case 2:
			d := 5 * time.Minute
			if r.inj.intn(2) == 0 {
				d = -d
			}
			r.inj.count(FaultClockSkew)
			r.logf("chaos: control-plane clock skew %s", d)
			r.skew.Store(int64(d))
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			r.skew.Store(0)
		case 3:
			if conns := r.sb.Gateway.Connections(); len(conns) > 0 && r.inj.onConnDrop != nil {
				r.inj.count(FaultWSConnDrop)
				r.logf("chaos: drop connection")
				r.inj.onConnDrop(conns[0].ID)
				r.waitReconnect(ctx, "after connection drop")
			}
		case 4, 5:
			if len(r.sb.PoolAgents) == 0 {
				continue
			}
			p := r.sb.PoolAgents[0]
			r.agentMu.Lock()
			if n := r.inj.intn(2); n == 0 {
				// Drain: SIGTERM waits for the agent to finish what it
				// holds, say so and exit; then it starts again.
				r.inj.count(FaultAgentDrained)
				r.logf("chaos: drain %s", p.ID)
				if err := p.Signal(syscall.SIGTERM); err != nil {
					r.violate("drain %s: %v", p.ID, err)
				}
				time.Sleep(time.Duration(r.inj.intn(1000)) * time.Millisecond)
				if err := p.Start(); err != nil {
					r.violate("agent %s restart after drain: %v", p.ID, err)
				} else if err := r.sb.WaitAgents(ctx, 60*time.Second); err == nil {
					r.mu.Lock()
					r.rep.Reconnects++
					r.mu.Unlock()
				}
			} else {
				// A partition without a FIN: frozen past 3 heartbeats, then
				// back on the same connection.
				r.inj.count(FaultAgentPartitioned)
				r.logf("chaos: partition %s silently", p.ID)
				_ = p.Signal(syscall.SIGSTOP)
				time.Sleep(time.Duration(4000+r.inj.intn(2000)) * time.Millisecond)
				_ = p.Signal(syscall.SIGCONT)
			}
			r.agentMu.Unlock()
			if err := r.sb.WaitAgents(ctx, 60*time.Second); err != nil && ctx.Err() == nil {
				r.violate("pool agents not back after %s: %v", p.ID, err)
			}
		}
	}
}

// waitReconnect checks the agent comes back (a recorded connection) within 30 s.
func (r *soakRun) waitReconnect(ctx context.Context, what string) {
	if ctx.Err() != nil {
		return
	}
	// The store may still hold the dead connection for a moment: wait
	// for the gateway to show a live one, then for the store.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(r.sb.Gateway.Connections()) > 0 {
			if err := r.sb.WaitAgent(ctx, time.Until(deadline)); err == nil {
				r.mu.Lock()
				r.rep.Reconnects++
				r.mu.Unlock()
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() == nil {
		r.violate("agent did not reconnect within 30s %s", what)
	}
}
