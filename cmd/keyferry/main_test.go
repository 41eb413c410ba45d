package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/sandbox"
)

// The sandbox and the CLI binary are shared by every test of the package.
var (
	sb     *sandbox.Sandbox
	kfBin  string
	tmpDir string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	if tmpDir, err = os.MkdirTemp("", "keyferry-cli-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmpDir)
	kfBin = filepath.Join(tmpDir, "keyferry")
	if out, err := exec.Command("go", "build", "-o", kfBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build keyferry: %v\n%s", err, out)
		return 1
	}
	// The sandbox pool as `make sandbox` runs it: two agents on one token.
	if sb, err = sandbox.Start(ctx, sandbox.Options{Agents: 2}); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: %v\n", err)
		return 1
	}
	defer sb.Close()
	// Every group gets a first generation, as `make sandbox` does.
	if _, err := sb.RotateAll(ctx, "schedule", 90*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox first rotation: %v\n", err)
		return 1
	}
	return m.Run()
}

// env is the environment of a CLI run against the sandbox as the operator
// principal (IAM from the template decides every call): only what the
// sandbox exports, a HOME without ~/.aws, and no instance metadata.
func env(drop ...string) []string {
	e := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmpDir, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(tmpDir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(tmpDir, "none")}
next:
	for _, kv := range sb.OperatorEnv() {
		for _, d := range drop {
			if strings.HasPrefix(kv, d+"=") {
				continue next
			}
		}
		e = append(e, kv)
	}
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

// kf runs the CLI binary with environment e.
func kf(t *testing.T, e []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(kfBin, args...)
	cmd.Env = e
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run keyferry %v: %v", args, err)
	}
	if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic:") {
		t.Fatalf("keyferry %v printed a stack trace:\n%s", args, errb.String())
	}
	return result{out.String(), errb.String(), code}
}

// kfJSON runs the CLI and decodes its JSON stdout into v, checking the exit code.
func kfJSON(t *testing.T, e []string, wantCode int, v any, args ...string) result {
	t.Helper()
	r := kf(t, e, args...)
	if r.code != wantCode {
		t.Fatalf("keyferry %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, wantCode, r.stdout, r.stderr)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("keyferry %v: stdout is not JSON: %v\n%s", args, err, r.stdout)
		}
	}
	return r
}

// errDoc decodes the --json error document.
type errDocT struct {
	Error struct {
		Kind     string `json:"kind"`
		Message  string `json:"message"`
		ExitCode int    `json:"exit_code"`
	} `json:"error"`
}

func TestHelpAndUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, 0, "Exit codes:"},
		{nil, 2, "Usage:"},
		{[]string{"rotate", "--help"}, 0, "--wait"},
		{[]string{"jobs", "--help"}, 0, "--watch"},
		{[]string{"frobnicate"}, 2, ""},
		{[]string{"rotate"}, 2, ""},
		{[]string{"rotate", "--bogus", "x"}, 2, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := kf(t, env(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("exit %d (want %d), stdout lacks %q:\n%s\n%s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}
