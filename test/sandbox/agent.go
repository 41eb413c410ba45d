package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BuildAgent builds keyferry-agent (cgo) into dir and returns its path.
// tags are Go build tags (the soak builds with "hsmfault").
func BuildAgent(ctx context.Context, dir string, tags ...string) (string, error) {
	out := filepath.Join(dir, "keyferry-agent")
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./agent/cmd/keyferry-agent")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sandbox: build keyferry-agent: %v: %s", err, b)
	}
	return out, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("sandbox: go env GOMOD: %w", err)
	}
	mod := string(out[:len(out)-1])
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("sandbox: run inside the keyferry module (or pass the agent binary)")
	}
	return filepath.Dir(mod), nil
}

// StartAgent launches the keyferry-agent process.
func (s *Sandbox) StartAgent(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agent != nil {
		return fmt.Errorf("sandbox: agent already running")
	}
	cmd := exec.Command(s.AgentBinary, "run", "--config", s.hsmConfig)
	cmd.Env = s.agentEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var w io.Writer = s.AgentLog
	if w == nil {
		f, err := os.OpenFile(filepath.Join(s.Dir, "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		w = f
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("sandbox: start agent: %w", err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s.agent, s.exit = cmd, exit
	return nil
}

// StopAgent stops the agent gracefully (SIGTERM), then kills it after 10 s.
func (s *Sandbox) StopAgent() error { return s.stopAgent(syscall.SIGTERM) }

// KillAgent SIGKILLs the agent (crash injection).
func (s *Sandbox) KillAgent() error { return s.stopAgent(syscall.SIGKILL) }

func (s *Sandbox) stopAgent(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exit := s.agent, s.exit
	s.agent = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-exit:
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exit
	}
	return nil
}

// WaitAgent waits until the agent has a recorded connection.
func (s *Sandbox) WaitAgent(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.Deps.Store.CountConnections(ctx)
		if err == nil && n > 0 {
			return nil
		}
		s.mu.Lock()
		exit := s.exit
		s.mu.Unlock()
		select {
		case <-exit:
			return fmt.Errorf("sandbox: keyferry-agent exited (see %s)", filepath.Join(s.Dir, "agent.log"))
		default:
		}
		// IAM's refusal does not heal while the policy stays: say so now.
		if d := s.agentDenials(); d != "" {
			return fmt.Errorf("sandbox: agent cannot connect%s (see %s)", d, filepath.Join(s.Dir, "agent.log"))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: agent did not connect within %s%s (see %s)", timeout, s.agentDenials(), filepath.Join(s.Dir, "agent.log"))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: waiting for the agent%s: %w", s.agentDenials(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
