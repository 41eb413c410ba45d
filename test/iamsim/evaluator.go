package iamsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Decision is the evaluator's answer.
type Decision string

// The evaluator's decisions (iam-simulate's overallResult).
const (
	Allowed          Decision = "Allowed"
	ImplicitlyDenied Decision = "ImplicitlyDenied"
	ExplicitlyDenied Decision = "ExplicitlyDenied"
)

// ErrInvalidRequest is a request the evaluator refuses to evaluate: an
// action IAM does not define, a resource the action cannot take, a
// malformed policy. It is a defect of the caller or of the template, never
// an answer.
var ErrInvalidRequest = errors.New("iamsim: invalid request")

// Policy is one identity policy, named by its source in the template.
type Policy struct {
	Name   string          `json:"name"`
	Policy json.RawMessage `json:"policy"`
}

// Request is one authorization question.
type Request struct {
	Principal        string          `json:"principal"`
	Action           string          `json:"action"`
	Resource         string          `json:"resource"`
	AccountID        string          `json:"accountId"`
	IdentityPolicies []Policy        `json:"identityPolicies"`
	ResourcePolicy   json.RawMessage `json:"resourcePolicy,omitempty"`
	Context          map[string]any  `json:"context,omitempty"`
}

// Evaluator is the running iam-simulate sidecar.
type Evaluator struct {
	url    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	client *http.Client
	once   sync.Once

	// The answer to an identical request is the same: decisions are
	// cached by the request's JSON (policies, context and all).
	mu    sync.Mutex
	cache map[string]Decision
}

// maxCached bounds the decision cache (it is dropped whole when full).
const maxCached = 200000

// Start runs sim.mjs (in this package's directory under moduleRoot) with
// node, resolving @cloud-copilot/* from moduleRoot/node_modules.
func Start(ctx context.Context, moduleRoot string) (*Evaluator, error) {
	script := filepath.Join(moduleRoot, "test", "iamsim", "sim.mjs")
	if _, err := os.Stat(filepath.Join(moduleRoot, "node_modules", "@cloud-copilot", "iam-simulate")); err != nil {
		return nil, fmt.Errorf("iamsim: @cloud-copilot/iam-simulate not installed under %s (run `make deps`, which runs npm ci): %w", moduleRoot, err)
	}
	cmd := exec.Command("node", script)
	cmd.Dir = moduleRoot
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("iamsim: start node %s: %w", script, err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				ready <- port
			}
		}
		close(ready)
	}()
	e := &Evaluator{cmd: cmd, stdin: stdin, cache: map[string]Decision{}, client: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	select {
	case port, ok := <-ready:
		if !ok {
			cmd.Wait()
			return nil, fmt.Errorf("iamsim: node %s exited at start: %s", script, stderr.String())
		}
		e.url = "http://127.0.0.1:" + port
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("iamsim: start: %w", ctx.Err())
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("iamsim: node %s did not listen within 30s: %s", script, stderr.String())
	}
	return e, nil
}

// Close stops the sidecar.
func (e *Evaluator) Close() error {
	e.once.Do(func() {
		e.stdin.Close()
		e.cmd.Process.Kill()
		e.cmd.Wait()
	})
	return nil
}

func (e *Evaluator) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("iamsim: evaluator: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("iamsim: evaluator answered %d %q: %w", resp.StatusCode, body, err)
	}
	return nil
}

// Evaluate asks whether the request is allowed.
func (e *Evaluator) Evaluate(ctx context.Context, r Request) (Decision, error) {
	key, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	d, ok := e.cache[string(key)]
	e.mu.Unlock()
	if ok {
		return d, nil
	}
	var out struct {
		Decision Decision `json:"decision"`
		Errors   string   `json:"errors"`
	}
	if err := e.post(ctx, "/simulate", r, &out); err != nil {
		return "", err
	}
	switch out.Decision {
	case Allowed, ImplicitlyDenied, ExplicitlyDenied:
		e.mu.Lock()
		if len(e.cache) >= maxCached {
			e.cache = map[string]Decision{}
		}
		e.cache[string(key)] = out.Decision
		e.mu.Unlock()
		return out.Decision, nil
	}
	return "", fmt.Errorf("%w: %s on %s: %s", ErrInvalidRequest, r.Action, r.Resource, out.Errors)
}

// UnknownActions returns the actions (service:Name, wildcards allowed)
// that the IAM catalogue does not define.
func (e *Evaluator) UnknownActions(ctx context.Context, actions []string) ([]string, error) {
	var out struct {
		Unknown []string `json:"unknown"`
	}
	if err := e.post(ctx, "/actions", map[string]any{"actions": actions}, &out); err != nil {
		return nil, err
	}
	return out.Unknown, nil
}
