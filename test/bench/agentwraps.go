package bench

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"gopkg.in/yaml.v3"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Benchmark identities (nothing here is a secret).
const (
	benchAccount = "111122223333"
	benchRegion  = "us-east-1"
	benchAgentID = "bench-agent-1"
)

// AgentProcess is one keyferry-agent process dialling a loopback control
// plane stand-in: a websocket server that signs wrap_requests with its own
// P-256 key (pinned in the agent's config, as KMS's signing key is) and
// verifies every wrap_result with the identity key from the agent's hello.
// Everything the agent does in production runs: SigV4 presign, tunnel,
// envelope verification, policy (replay, rate, pins), HSM keygen+wrap,
// hash-chained signed audit log with fsync, signed result.
type AgentProcess struct {
	Dir string

	cmd      *exec.Cmd
	exited   chan struct{}
	cp       *protocol.ECDSASigner
	srv      *http.Server
	ln       net.Listener
	conns    chan *websocket.Conn
	identity *protocol.Verifier
	conn     *websocket.Conn
	in       chan []byte
}

// StartAgentProcess writes a config for token h (SoftHSM) with pool
// sessions, starts binary and waits for its hello.
func StartAgentProcess(ctx context.Context, binary, dir string, h hsm.Config, softhsmConf string, sessions int) (_ *AgentProcess, err error) {
	a := &AgentProcess{Dir: dir, conns: make(chan *websocket.Conn, 4), in: make(chan []byte, 4096), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.cp, err = protocol.GenerateECDSASigner(); err != nil {
		return nil, err
	}
	if a.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		a.conns <- ws
	})}
	go a.srv.Serve(a.ln)

	pubFile := filepath.Join(dir, "control-plane.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: a.cp.PublicKeyDER()}), 0o600); err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"agent_id": benchAgentID, "hsm_pool": "bench",
		"endpoint": "ws://" + a.ln.Addr().String() + "/prod", "region": benchRegion,
		"state_dir": dir, "log_level": "warn",
		"hsm": map[string]any{"module": h.Module, "token_label": h.TokenLabel, "pin_file": h.PINFile,
			"pool_size": sessions, "identity_label": "kf-agent-identity"},
		"control_plane": map[string]any{"public_key_file": pubFile, "clock_skew": "2m"},
		"policy": map[string]any{
			"accounts": []string{benchAccount}, "regions": []string{benchRegion}, "min_wrapping_key_bits": 2048,
			"global_rate": map[string]any{"per_minute": 600000, "burst": 10000},
			"group_rate":  map[string]any{"per_minute": 600000, "burst": 10000},
		},
		"tunnel":  map[string]any{"heartbeat_interval": "30s", "backoff_initial": "100ms", "backoff_max": "1s"},
		"audit":   map[string]any{"path": filepath.Join(dir, "audit.jsonl"), "sign": true},
		"metrics": map[string]any{"listen": "127.0.0.1:0"},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	a.cmd = exec.Command(binary, "run", "--config", cfgFile)
	a.cmd.Env = agentEnv(softhsmConf)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("bench: start agent: %w", err)
	}
	go func() { a.cmd.Wait(); logf.Close(); close(a.exited) }()

	select {
	case a.conn = <-a.conns:
	case <-a.exited:
		return nil, fmt.Errorf("bench: agent exited before connecting (see %s)", filepath.Join(dir, "agent.log"))
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("bench: agent did not connect within 60s (see %s)", filepath.Join(dir, "agent.log"))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	go a.read()
	hello, err := a.next(ctx, protocol.ActionHello, 30*time.Second)
	if err != nil {
		return nil, err
	}
	// The hello carries the identity key; it verifies against itself here
	// (the control plane checks it against the registered one).
	var h0 struct {
		IdentityPublicKey []byte `json:"identity_public_key"`
	}
	if err := jsonUnmarshal(hello.Payload, &h0); err != nil {
		return nil, fmt.Errorf("bench: hello: %w", err)
	}
	if a.identity, err = protocol.ParseVerifierDER(h0.IdentityPublicKey); err != nil {
		return nil, fmt.Errorf("bench: hello identity: %w", err)
	}
	if _, err := protocol.OpenHello(hello, a.identity, time.Now(), time.Minute); err != nil {
		return nil, fmt.Errorf("bench: hello does not verify: %w", err)
	}
	return a, nil
}

func agentEnv(softhsmConf string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "KEYFERRY_") || strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_ACCESS_KEY_ID=AKIABENCHAGENT000001", "AWS_SECRET_ACCESS_KEY=bench-not-a-secret",
		"AWS_REGION="+benchRegion, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "SOFTHSM2_CONF="+softhsmConf)
}

func (a *AgentProcess) read() {
	for {
		_, m, err := a.conn.ReadMessage()
		if err != nil {
			close(a.in)
			return
		}
		a.in <- m
	}
}

// next returns the next message with action, skipping heartbeats.
func (a *AgentProcess) next(ctx context.Context, want protocol.Action, timeout time.Duration) (*protocol.Envelope, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-a.in:
			if !ok {
				return nil, errors.New("bench: agent connection closed")
			}
			env, err := protocol.Decode(m)
			if err != nil {
				return nil, fmt.Errorf("bench: agent sent an undecodable message: %w", err)
			}
			switch env.Action {
			case want:
				return env, nil
			case protocol.ActionError:
				return nil, &agentError{payload: string(env.Payload)}
			}
		case <-t.C:
			return nil, fmt.Errorf("bench: no %s from the agent within %s", want, timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// PID is the agent's process id.
func (a *AgentProcess) PID() int { return a.cmd.Process.Pid }

// Wraps sends n signed wrap_requests (generate, a fresh label and key ARN
// each) with at most window in flight, and waits for every signed
// wrap_result. Each result's signature is verified; every verifyEvery-th
// blob is unwrapped and checked.
func (a *AgentProcess) Wraps(ctx context.Context, wk *WrappingKey, prefix string, n, window, verifyEvery int) (Rate, error) {
	if window < 1 {
		window = 1
	}
	sem := make(chan struct{}, window)
	var mu sync.Mutex
	sendErr := error(nil)
	start := time.Now()
	go func() {
		for i := 1; i <= n; i++ {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			msg, err := a.request(ctx, wk, prefix, i)
			if err == nil {
				err = a.conn.WriteMessage(websocket.TextMessage, msg)
			}
			if err != nil {
				mu.Lock()
				sendErr = err
				mu.Unlock()
				return
			}
		}
	}()
	verified, failed := 0, 0
	var firstFailure string
	for i := 1; i <= n; i++ {
		env, err := a.next(ctx, protocol.ActionWrapResult, 120*time.Second)
		var ae *agentError
		if errors.As(err, &ae) {
			// The agent answered this request with an error: count it, go on.
			<-sem
			failed++
			if firstFailure == "" {
				firstFailure = ae.payload
			}
			continue
		}
		if err != nil {
			mu.Lock()
			err = errors.Join(err, sendErr)
			mu.Unlock()
			return Rate{Ops: i - 1 - failed, Failed: failed, Elapsed: time.Since(start), Verified: verified}, err
		}
		<-sem
		res, err := protocol.OpenWrapResult(env, a.identity, time.Now(), time.Minute)
		if err != nil {
			return Rate{}, fmt.Errorf("bench: wrap_result does not verify: %w", err)
		}
		if verifyEvery > 0 && i%verifyEvery == 0 {
			if err := wk.CheckBlob(res.WrappedMaterial); err != nil {
				return Rate{}, err
			}
			verified++
		}
	}
	r := Rate{Ops: n - failed, Failed: failed, FirstFailure: firstFailure, Elapsed: time.Since(start), Verified: verified}
	if failed > n/10 {
		return r, fmt.Errorf("bench: %d of %d wraps failed, first: %s", failed, n, firstFailure)
	}
	return r, nil
}

// agentError is an error message the agent sent instead of a result.
type agentError struct{ payload string }

func (e *agentError) Error() string { return "bench: agent error: " + e.payload }

func (a *AgentProcess) request(ctx context.Context, wk *WrappingKey, prefix string, i int) ([]byte, error) {
	nonce, err := protocol.NewNonce()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	r := protocol.WrapRequest{
		RequestID: fmt.Sprintf("req-%s-%d", prefix, i), JobID: fmt.Sprintf("job-%s-%d", prefix, i), Nonce: nonce,
		Account: benchAccount, Region: benchRegion, Group: prefix,
		KeyARN:  fmt.Sprintf("arn:aws:kms:%s:%s:key/%08d-0000-4000-8000-%012d", benchRegion, benchAccount, i, i),
		KeySpec: WrapKeySpec, Operation: protocol.OpGenerate, HSMLabel: fmt.Sprintf("kf/%s/%d", prefix, i),
		WrappingAlgorithm: WrapAlgorithm, WrappingKeySpec: wrappingKeySpecOf(wk), WrappingPublicKey: wk.DER,
		IssuedAt: now.Add(-time.Second), ExpiresAt: now.Add(5 * time.Minute),
	}
	return protocol.Seal(ctx, a.cp, "control-plane", protocol.ActionWrapRequest, r)
}

// Close stops the agent (SIGTERM, then SIGKILL after 10 s) and the server.
func (a *AgentProcess) Close() error {
	if a.cmd != nil && a.cmd.Process != nil {
		syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.exited
		}
	}
	if a.conn != nil {
		a.conn.Close()
	}
	if a.srv != nil {
		a.srv.Close()
	}
	return nil
}
