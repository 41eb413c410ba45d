// Package gotool runs the go command at the module's root from a test: the
// build checks that a release build leaves the test seams out, and that
// parts of the agent build without cgo.
package gotool

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Run runs go with args at the module root, with the caller's environment
// plus env and GOFLAGS cleared (so a test run's -tags do not leak into the
// build being checked), and returns its combined output. A failure fails t.
func Run(t testing.TB, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot(t)
	cmd.Env = append(os.Environ(), append([]string{"GOFLAGS="}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, out)
	}
	return out
}

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("gotool: no go.mod above the working directory")
		}
		dir = parent
	}
}

// GoFiles lists the Go files of package pkg (a path from the module root)
// as the build with tags compiles them.
func GoFiles(t testing.TB, pkg string, tags ...string) []string {
	t.Helper()
	args := []string{"list"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	return strings.Fields(string(Run(t, nil, append(args, "-f", `{{join .GoFiles " "}}`, pkg)...)))
}
