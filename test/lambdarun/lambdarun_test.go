package lambdarun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var rieBin, echoBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "lambdarun-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		rieBin, echoBin = filepath.Join(dir, "aws-lambda-rie"), filepath.Join(dir, "echo", "bootstrap")
		for out, pkg := range map[string]string{rieBin: "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie", echoBin: "./testdata/echo"} {
			cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", out, pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v: %s\n", pkg, err, b)
				return 1
			}
		}
		return m.Run()
	}())
}

func newRuntime(t *testing.T, cfgs ...FunctionConfig) *Runtime {
	t.Helper()
	rt := New(Options{RIE: rieBin, Region: "us-east-1", Account: "111122223333",
		Credentials: func(fn, role string) (string, string) { return "AKIA" + role, "secret" }})
	t.Cleanup(func() { rt.Close() })
	for _, c := range cfgs {
		if err := rt.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	return rt
}

type echoResp struct {
	PID int    `json:"pid"`
	Env string `json:"env"`
}

func invokeEcho(t *testing.T, rt *Runtime, name string, req map[string]any) (echoResp, error) {
	t.Helper()
	b, _ := json.Marshal(req)
	out, err := rt.Invoke(context.Background(), name, b)
	var r echoResp
	if err == nil {
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("answer %q: %v", out, err)
		}
	}
	return r, err
}

// alive reports whether pid runs (a zombie waiting for its reaper does not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

func TestReuseEnvAndColdStarts(t *testing.T) {
	rt := newRuntime(t, FunctionConfig{Name: "echo", RoleLogicalID: "EchoRole", Bootstrap: echoBin, Timeout: 5 * time.Second, MemoryMB: 256, Concurrency: -1,
		Env: map[string]string{"KEYFERRY_X": "from-template"}})
	tests := []struct{ env, want string }{
		{"KEYFERRY_X", "from-template"},
		{"AWS_LAMBDA_FUNCTION_TIMEOUT", "5"},
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"},
		{"AWS_ACCESS_KEY_ID", "AKIAEchoRole"},
		{"AWS_LAMBDA_FUNCTION_NAME", "echo"},
	}
	pid := 0
	for _, tc := range tests {
		r, err := invokeEcho(t, rt, "echo", map[string]any{"env": tc.env})
		if err != nil {
			t.Fatal(err)
		}
		if r.Env != tc.want {
			t.Errorf("%s = %q, want %q", tc.env, r.Env, tc.want)
		}
		if pid != 0 && r.PID != pid {
			t.Errorf("instance not reused: pid %d then %d", pid, r.PID)
		}
		pid = r.PID
	}
	if s := rt.Stats("echo"); s.ColdStarts != 1 || s.Invocations != int64(len(tests)) || s.AliveNow != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestConcurrencyLimitAndInstances(t *testing.T) {
	rt := newRuntime(t, FunctionConfig{Name: "echo", Bootstrap: echoBin, Timeout: 10 * time.Second, Concurrency: 3})
	var wg sync.WaitGroup
	pids := make(chan int, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := invokeEcho(t, rt, "echo", map[string]any{"sleep_ms": 300})
			if err != nil {
				t.Error(err)
			}
			pids <- r.PID
		}()
	}
	wg.Wait()
	close(pids)
	distinct := map[int]bool{}
	for p := range pids {
		distinct[p] = true
	}
	s := rt.Stats("echo")
	if s.AliveMax != 3 || s.ColdStarts != 3 || len(distinct) != 3 || s.Invocations != 6 {
		t.Fatalf("6 concurrent invocations at reserved concurrency 3: stats %+v, %d distinct instances", s, len(distinct))
	}
	// One OS process (tree) per instance.
	if got := rt.PIDs("echo"); len(got) != 3 {
		t.Fatalf("PIDs %v", got)
	}
}

func TestTimeoutKillsAndReplacesInstance(t *testing.T) {
	rt := newRuntime(t, FunctionConfig{Name: "slow", Bootstrap: echoBin, Timeout: 1 * time.Second, Concurrency: 1})
	first, err := invokeEcho(t, rt, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	rie := rt.PIDs("slow")
	start := time.Now()
	_, err = invokeEcho(t, rt, "slow", map[string]any{"sleep_ms": 5000})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), `function "slow"`) {
		t.Fatalf("got %v, want a timeout naming the function", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("timeout answered after %s (timeout 1s)", d)
	}
	time.Sleep(100 * time.Millisecond)
	if alive(first.PID) || alive(rie[0]) {
		t.Errorf("timed-out instance still running (bootstrap %d alive %v, rie %d alive %v)", first.PID, alive(first.PID), rie[0], alive(rie[0]))
	}
	next, err := invokeEcho(t, rt, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.PID == first.PID {
		t.Error("the timed-out instance answered again")
	}
	if s := rt.Stats("slow"); s.Timeouts != 1 || s.ColdStarts != 2 || s.AliveNow != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestFunctionError(t *testing.T) {
	rt := newRuntime(t, FunctionConfig{Name: "echo", Bootstrap: echoBin, Timeout: 5 * time.Second, Concurrency: 1})
	first, _ := invokeEcho(t, rt, "echo", nil)
	_, err := invokeEcho(t, rt, "echo", map[string]any{"fail": "no such group"})
	var fe *Error
	if !errors.As(err, &fe) || fe.Doc.Message != "no such group" || fe.Doc.Type == "" {
		t.Fatalf("got %#v", err)
	}
	// A function error keeps the instance.
	if r, err := invokeEcho(t, rt, "echo", nil); err != nil || r.PID != first.PID {
		t.Fatalf("after a function error: %+v %v (first pid %d)", r, err, first.PID)
	}
}

func TestBadBootstrap(t *testing.T) {
	dir := t.TempDir()
	crash := filepath.Join(dir, "crash", "bootstrap")
	os.MkdirAll(filepath.Dir(crash), 0o755)
	os.WriteFile(crash, []byte("#!/bin/sh\necho 'cannot read key-groups.yaml' >&2\nexit 3\n"), 0o755)
	notExec := filepath.Join(dir, "plain")
	os.WriteFile(notExec, []byte("x"), 0o644)

	rt := newRuntime(t)
	for _, tc := range []struct{ name, bootstrap, want string }{
		{"missing", filepath.Join(dir, "absent"), `lambdarun: function "missing": bootstrap`},
		{"plain", notExec, `lambdarun: function "plain": bootstrap ` + notExec + ` is not an executable file`},
	} {
		if err := rt.Add(FunctionConfig{Name: tc.name, Bootstrap: tc.bootstrap}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add %s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := rt.Add(FunctionConfig{Name: "crash", Bootstrap: crash, Timeout: 5 * time.Second, Concurrency: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := rt.Invoke(context.Background(), "crash", []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), `function "crash"`) || !strings.Contains(err.Error(), "cannot read key-groups.yaml") {
		t.Fatalf("got %v, want an error naming the function and the cause", err)
	}
	if s := rt.Stats("crash"); s.AliveNow != 0 {
		t.Fatalf("a failed instance left running: %+v", s)
	}
	if _, err := rt.Invoke(context.Background(), "nope", nil); err == nil || !strings.Contains(err.Error(), `"nope" not added`) {
		t.Fatalf("unknown function: %v", err)
	}
}

func TestCloseKillsEveryInstance(t *testing.T) {
	rt := newRuntime(t, FunctionConfig{Name: "echo", Bootstrap: echoBin, Timeout: 5 * time.Second, Concurrency: 2})
	r, err := invokeEcho(t, rt, "echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	pids := rt.PIDs("echo")
	rt.Close()
	time.Sleep(100 * time.Millisecond)
	if alive(r.PID) || alive(pids[0]) {
		t.Fatal("instance survived Close")
	}
	if _, err := rt.Invoke(context.Background(), "echo", nil); err == nil {
		t.Fatal("invoke after Close")
	}
}

// TestStartRetriesWhenItsPortIsTaken: a port chosen free can be taken by
// another process before aws-lambda-rie binds it (CI saw it). The RIE then
// exits; the start tries again on new ports instead of failing the call.
func TestStartRetriesWhenItsPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	orig := freeAddr
	var calls atomic.Int32
	freeAddr = func() (string, error) {
		// The first instance's RIE address is a port someone else holds.
		if calls.Add(1) == 1 {
			return taken.Addr().String(), nil
		}
		return orig()
	}
	t.Cleanup(func() { freeAddr = orig })
	rt := newRuntime(t, FunctionConfig{Name: "echo", RoleLogicalID: "EchoRole", Bootstrap: echoBin, Timeout: 5 * time.Second, MemoryMB: 128, Concurrency: -1})
	r, err := invokeEcho(t, rt, "echo", map[string]any{"env": "AWS_LAMBDA_FUNCTION_NAME"})
	if err != nil {
		t.Fatalf("invoke after a lost port: %v", err)
	}
	if r.Env != "echo" {
		t.Errorf("answered by %q, want the echo function", r.Env)
	}
	if calls.Load() < 4 {
		t.Errorf("freeAddr called %d times: the start was not retried", calls.Load())
	}
	if s := rt.Stats("echo"); s.ColdStarts != 1 || s.AliveNow != 1 {
		t.Errorf("stats %+v: want one cold start and one instance (the failed start not counted)", s)
	}
}
