package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyferry/keyferry/agent/config"
	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// PoolAgent is a further keyferry-agent process of the sandbox's pool: its
// own identity key on the same token (the pool is one logical HSM), its own
// state directory, pins and audit log.
type PoolAgent struct {
	ID     string
	Config string
	Log    string
	cmd    *exec.Cmd
	exit   chan struct{}
	s      *Sandbox
}

// poolAgent writes the configuration of further agent id of the pool (the
// first agent's, with its own identity label, state directory and audit
// log: the pool is one logical HSM, so every agent opens the same token)
// and creates its identity key on the token. It does not start it.
func (s *Sandbox) poolAgent(ctx context.Context, id string) (*PoolAgent, string, error) {
	b, err := os.ReadFile(s.hsmConfig)
	if err != nil {
		return nil, "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, "", err
	}
	dir := filepath.Join(s.Dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	cfg["agent_id"], cfg["state_dir"] = id, dir
	if h, ok := cfg["hsm"].(map[string]any); ok {
		h["identity_label"] = "kf-agent-identity-" + id
	}
	if a, ok := cfg["audit"].(map[string]any); ok {
		a["path"] = filepath.Join(dir, "audit.jsonl")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, "", err
	}
	p := &PoolAgent{ID: id, Config: filepath.Join(dir, "agent.yaml"), Log: filepath.Join(s.Dir, id+".log"), s: s}
	if err := os.WriteFile(p.Config, out, 0o600); err != nil {
		return nil, "", err
	}
	pemKey, err := s.agentIdentity(ctx, p.Config)
	if err != nil {
		return nil, "", fmt.Errorf("sandbox: agent %s: %w", id, err)
	}
	return p, pemKey, nil
}

// PoolAgentID is the id of the n-th agent of the sandbox pool (1 is AgentID).
func PoolAgentID(n int) string { return fmt.Sprintf("sandbox-agent-%d", n) }

// AddPoolAgent adds agent id to a running sandbox: writes its
// configuration (poolAgent), registers its identity in the pool of the
// control plane's loaded key-group configuration and starts it.
// Registration edits the loaded configuration, so the functions must run
// in this process (FunctionsInProcess); Options.Agents registers the pool's
// agents in the groups file before any function starts.
func (s *Sandbox) AddPoolAgent(ctx context.Context, id string) (*PoolAgent, error) {
	if s.Deps == nil || s.Deps.Engine.Groups == nil {
		return nil, fmt.Errorf("sandbox: no control plane to register agent %s in", id)
	}
	p, pemKey, err := s.poolAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	register := func(gc *groups.Config) {
		if pool, ok := gc.Pool(Pool); ok {
			pool.Agents = append(pool.Agents, groups.Agent{ID: id, PublicKey: pemKey})
		}
	}
	register(s.Deps.Engine.Groups)
	if s.Groups != nil && s.Groups != s.Deps.Engine.Groups {
		register(s.Groups)
	}
	s.mu.Lock()
	s.PoolAgents = append(s.PoolAgents, p)
	s.mu.Unlock()
	return p, p.Start()
}

// Start launches the agent process.
func (p *PoolAgent) Start() error {
	if p.cmd != nil {
		return fmt.Errorf("sandbox: agent %s already running", p.ID)
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.s.AgentBinary, "run", "--config", p.Config)
	cmd.Env = p.s.agentEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("sandbox: start agent %s: %w", p.ID, err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(exit) }()
	p.cmd, p.exit = cmd, exit
	return nil
}

// Signal sends sig to the agent's process group and, for SIGTERM and
// SIGKILL, waits for it to exit (SIGKILL after 10 s).
func (p *PoolAgent) Signal(sig syscall.Signal) error {
	if p.cmd == nil {
		return nil
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		return err
	}
	if sig != syscall.SIGTERM && sig != syscall.SIGKILL {
		return nil
	}
	select {
	case <-p.exit:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exit
	}
	p.cmd = nil
	return nil
}

// TokenConfig is the HSM configuration of the pool's agents (one token),
// read from the agent's config file by the agent's own parser (so a
// setting the agent uses, such as NSS's init_args, cannot be left out), for
// tests that look at the key store itself.
func (s *Sandbox) TokenConfig() (hsm.Config, error) {
	return AgentTokenConfig(s.hsmConfig)
}

// AgentTokenConfig is the token selection and login of the agent config at
// path, one session, as keyferry-agent opens it.
func AgentTokenConfig(path string) (hsm.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return hsm.Config{}, fmt.Errorf("sandbox: agent config: %w", err)
	}
	c, err := config.Parse(b)
	if err != nil {
		return hsm.Config{}, fmt.Errorf("sandbox: agent config %s: %w", path, err)
	}
	h := c.HSM
	return hsm.Config{Module: h.Module, TokenLabel: h.TokenLabel, TokenSerial: h.TokenSerial, PINFile: h.PINFile, PINEnv: h.PINEnv,
		InitArgs: h.InitArgs, PoolSize: 1}, nil
}

// AgentIDs lists the ids of the sandbox pool's agent processes, AgentID first.
func (s *Sandbox) AgentIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []string{AgentID}
	for _, p := range s.PoolAgents {
		ids = append(ids, p.ID)
	}
	return ids
}

// WaitAgents waits until every agent of AgentIDs has a connection whose
// hello verified.
func (s *Sandbox) WaitAgents(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conns, err := s.Deps.Store.ConnectionsInPool(ctx, Pool)
		var missing []string
		for _, id := range s.AgentIDs() {
			if !slices.ContainsFunc(conns, func(c *store.Connection) bool { return c.AgentID == id && c.Hello && c.GoneAt.IsZero() }) {
				missing = append(missing, id)
			}
		}
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: agents %v did not say hello within %s (err %v; see the logs in %s)", missing, timeout, err, s.Dir)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: waiting for agents %v: %w", missing, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StopAgents stops every agent of the pool gracefully (SIGTERM: each
// drains), the further ones first.
func (s *Sandbox) StopAgents() error {
	s.mu.Lock()
	further := slices.Clone(s.PoolAgents)
	s.mu.Unlock()
	var errs []error
	for _, p := range further {
		errs = append(errs, p.Signal(syscall.SIGTERM))
	}
	return errors.Join(append(errs, s.StopAgent())...)
}

// StartAgents starts every agent of the pool that is not running and waits
// until each has said hello.
func (s *Sandbox) StartAgents(ctx context.Context, timeout time.Duration) error {
	s.mu.Lock()
	first := s.agent == nil
	further := slices.Clone(s.PoolAgents)
	s.mu.Unlock()
	if first {
		if err := s.StartAgent(ctx); err != nil {
			return err
		}
	}
	for _, p := range further {
		if p.Running() {
			continue
		}
		if err := p.Start(); err != nil {
			return err
		}
	}
	return s.WaitAgents(ctx, timeout)
}

// Running reports whether the agent's process was started and not stopped.
func (p *PoolAgent) Running() bool { return p.cmd != nil }

// SetAgentKeySpecs sets policy.key_specs in the config of agent id (AgentID
// or a further agent of the pool): the key specs it will produce and
// advertise in its hello. nil removes the setting (every key spec). It
// takes effect at the agent's next start; a test that limits an agent
// restores it.
func (s *Sandbox) SetAgentKeySpecs(id string, specs []string) error {
	path := s.hsmConfig
	if id != AgentID {
		path = ""
		s.mu.Lock()
		for _, p := range s.PoolAgents {
			if p.ID == id {
				path = p.Config
			}
		}
		s.mu.Unlock()
		if path == "" {
			return fmt.Errorf("sandbox: no agent %s in the pool", id)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("sandbox: agent config %s: %w", path, err)
	}
	pol, _ := cfg["policy"].(map[string]any)
	if pol == nil {
		return fmt.Errorf("sandbox: agent config %s has no policy", path)
	}
	if specs == nil {
		delete(pol, "key_specs")
	} else {
		pol["key_specs"] = specs
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	// The agent's own parser must accept it (a misspelt spec fails here,
	// not at the agent's start).
	c, err := config.Parse(out)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		return fmt.Errorf("sandbox: agent %s key specs %v: %w", id, specs, err)
	}
	return os.WriteFile(path, out, 0o600)
}

// DuplicateAgent writes a second configuration of AgentID itself (the
// same agent id and identity key on the token, its own state directory
// and audit log: a second host misconfigured as the same agent) and
// returns it unstarted. Its hello verifies, so each of the two supersedes
// the other's connection when it says hello.
func (s *Sandbox) DuplicateAgent() (*PoolAgent, error) {
	b, err := os.ReadFile(s.hsmConfig)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.Dir, AgentID+"-duplicate")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg["state_dir"] = dir
	if a, ok := cfg["audit"].(map[string]any); ok {
		a["path"] = filepath.Join(dir, "audit.jsonl")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	p := &PoolAgent{ID: AgentID, Config: filepath.Join(dir, "agent.yaml"), Log: filepath.Join(s.Dir, AgentID+"-duplicate.log"), s: s}
	return p, os.WriteFile(p.Config, out, 0o600)
}
