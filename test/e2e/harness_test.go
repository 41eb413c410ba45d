package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/sandbox"
)

// Control-plane timings of the suite's sandboxes: short enough that the
// sweeper's deadlines are reached by moving the engine clock less than the
// agent's 2 min clock skew allowance.
const (
	jobTimeout = 30 * time.Second
	requestTTL = 10 * time.Second
	waitJob    = 60 * time.Second
)

// Sandbox kinds. Only one sandbox runs per process (it sets process-wide
// AWS_* and SOFTHSM2_CONF variables), so switching kind closes the running one.
const (
	kindMain = "main" // shared by the tests that leave it usable; every function its bootstrap under the RIE
	// kindClock runs the functions in this process: its tests move the
	// engine's clock (keepalive weeks ahead, request expiry), which a
	// bootstrap process cannot share.
	kindClock = "clock"
	// kindPool: two agents in the sandbox pool (pool_test.go).
	kindPool = "pool"
)

var (
	agentBinary string // built once by TestMain

	sbMu      sync.Mutex
	sbCur     *sandbox.Sandbox
	sbKind    string
	sbClock   *shiftClock
	sbRotated bool // every group of sbCur has been rotated at least once
	// sbPoolAgent is the second agent of a kindPool sandbox.
	sbPoolAgent *sandbox.PoolAgent
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := sandbox.Check(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "keyferry-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if agentBinary, err = sandbox.BuildAgent(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	closeSandbox()
	return code
}

func closeSandbox() {
	if sbCur != nil {
		if sbPoolAgent != nil {
			sbPoolAgent.Signal(syscall.SIGKILL)
			sbPoolAgent = nil
		}
		sbCur.Close()
		sbCur, sbKind, sbClock, sbRotated = nil, "", nil, false
		// Start exported the closed sandbox's KMS endpoint, and reads
		// $AWS_ENDPOINT_URL_KMS as an external endpoint: the next sandbox
		// would dial the dead emulator.
		os.Unsetenv("AWS_ENDPOINT_URL_KMS")
	}
}

// shiftClock is the control plane's clock (Engine.Now): real time plus an
// offset the tests move, except while the engine signs a wrap_request for
// the agent (Signing), whose own clock cannot move.
type shiftClock struct {
	mu      sync.Mutex
	offset  time.Duration
	signing bool
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signing {
		return time.Now()
	}
	return time.Now().Add(c.offset)
}

func (c *shiftClock) Set(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

func (c *shiftClock) setSigning(b bool) {
	c.mu.Lock()
	c.signing = b
	c.mu.Unlock()
}

// useSandbox returns the running sandbox of kind, starting it (and closing
// another kind) as needed. Its agent logs land in the test's failure output.
func useSandbox(t *testing.T, kind string) (*sandbox.Sandbox, *shiftClock) {
	t.Helper()
	sbMu.Lock()
	defer sbMu.Unlock()
	if sbCur != nil && sbKind == kind {
		return sbCur, sbClock
	}
	closeSandbox()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	functions := sandbox.FunctionsRIE
	if kind == kindClock {
		functions = sandbox.FunctionsInProcess
	}
	s, err := sandbox.Start(ctx, sandbox.Options{
		Functions:   functions,
		AgentBinary: agentBinary,
		JobTimeout:  jobTimeout,
		RequestTTL:  requestTTL,
		// Multi-Region tests fail one Region's KMS (regions_test.go).
		KMSRegionFault: regionFaultHook,
	})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	clk := &shiftClock{}
	s.Deps.Engine.Now = clk.Now
	sbCur, sbKind, sbClock = s, kind, clk
	return s, clk
}

// dumpAgentLog prints the agent's log when t failed.
func dumpAgentLog(t *testing.T, s *sandbox.Sandbox) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		b, _ := os.ReadFile(filepath.Join(s.Dir, "agent.log"))
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("agent.log (tail):\n%s", b)
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// ensureRotated rotates every group of s once (first generation) if this
// sandbox has not done it yet.
func ensureRotated(t *testing.T, s *sandbox.Sandbox) {
	t.Helper()
	if sbRotated {
		return
	}
	if _, err := s.RotateAll(testCtx(t), "schedule", waitJob); err != nil {
		t.Fatalf("first rotation of every group: %v", err)
	}
	sbRotated = true
}

// schedule delivers the EventBridge Scheduler input for group, exactly as
// the schedule's target Input (with the execution id as id).
func schedule(t *testing.T, s *sandbox.Sandbox, group, id string) handlers.RotateResult {
	t.Helper()
	payload := fmt.Sprintf(`{"group":%q,"trigger":"schedule","id":%q}`, group, id)
	return rotatePayload(t, s, []byte(payload))
}

func rotatePayload(t *testing.T, s *sandbox.Sandbox, payload []byte) handlers.RotateResult {
	t.Helper()
	res, err := s.RotatePayload(testCtx(t), payload)
	if err != nil {
		t.Fatalf("rotate %s: %v", payload, err)
	}
	return res
}

// succeeded waits for job id and fails the test unless it SUCCEEDED.
func succeeded(t *testing.T, s *sandbox.Sandbox, id string) *store.Job {
	t.Helper()
	if id == "" {
		t.Fatal("no job id")
	}
	j, err := s.WaitJob(testCtx(t), id, waitJob)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	if j.State != store.StateSucceeded {
		t.Fatalf("job %s (%s %s) ended %s: %s", j.ID, j.Group, j.Kind, j.State, j.Reason)
	}
	return j
}

// reachState waits until job id is in state want (the worker runs jobs
// handed on through the job queue, so a trigger returns before its job
// moves) and returns the job; it fails the test if the job ends first.
func reachState(t *testing.T, s *sandbox.Sandbox, id string, want store.State) *store.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := s.Deps.Store.GetJob(testCtx(t), id)
		if err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
		if j.State == want {
			return j
		}
		if j.State.Terminal() || time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s), want %s", id, j.State, j.Reason, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(t *testing.T, s *sandbox.Sandbox, keyID string) *kmstypes.KeyMetadata {
	t.Helper()
	out, err := s.KMS.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", keyID, err)
	}
	return out.KeyMetadata
}

func latestGeneration(t *testing.T, s *sandbox.Sandbox, group string) *store.Generation {
	t.Helper()
	g, err := s.Deps.Store.Latest(testCtx(t), group)
	if err != nil {
		t.Fatalf("latest generation of %s: %v", group, err)
	}
	return g
}

func generations(t *testing.T, s *sandbox.Sandbox, group string) []*store.Generation {
	t.Helper()
	gens, err := s.Deps.Store.Generations(testCtx(t), group)
	if err != nil {
		t.Fatalf("generations of %s: %v", group, err)
	}
	return gens
}

func isInvalidState(err error) bool {
	var e *kmstypes.KMSInvalidStateException
	return errors.As(err, &e)
}

// waitConnections waits until the store records n connections with a
// verified hello (n = 0: none at all).
func waitConnections(t *testing.T, s *sandbox.Sandbox, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := s.Deps.Store.ConnectionsInPool(testCtx(t), sandbox.Pool)
		hello := 0
		for _, c := range cs {
			if c.Hello {
				hello++
			}
		}
		if err == nil && ((n == 0 && len(cs) == 0) || (n > 0 && hello == n)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d agent connections, have %d (%d with hello): %v", n, len(cs), hello, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sweep runs the keepalive function's sweeper task.
func sweep(t *testing.T, s *sandbox.Sandbox) handlers.KeepaliveResult {
	t.Helper()
	res, err := s.Keepalive(testCtx(t), []byte(`{"task":"sweep"}`))
	if err != nil {
		t.Logf("sweep: %v", err)
	}
	return res
}

// aliasesResolveToUsableKeys checks the invariant "an alias never points at
// a key without imported material" for every group alias.
func aliasesResolveToUsableKeys(t *testing.T, s *sandbox.Sandbox) {
	t.Helper()
	for _, g := range s.Groups.Groups {
		out, err := s.KMS.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: aws.String(g.Alias)})
		if err != nil {
			var nf *kmstypes.NotFoundException
			if errors.As(err, &nf) {
				continue // never rotated: no alias yet
			}
			t.Fatalf("DescribeKey %s: %v", g.Alias, err)
		}
		if st := out.KeyMetadata.KeyState; st != kmstypes.KeyStateEnabled {
			t.Errorf("alias %s -> %s in state %s, want Enabled", g.Alias, aws.ToString(out.KeyMetadata.Arn), st)
		}
	}
}
