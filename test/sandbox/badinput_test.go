package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// children lists the live (not zombie) processes whose parent is this one.
func children(t *testing.T) []string {
	t.Helper()
	me := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == me && f[0] != "Z" {
			out = append(out, string(b[:i+1]))
		}
	}
	return out
}

// TestSandboxStartRefusesABrokenFunction: a function of the template whose
// code is not there (its asset folder has no bootstrap) stops the sandbox
// at start with one error naming the function and the cause, and nothing
// it had started (moto_server, emulators, instances, the agent) is left
// running.
func TestSandboxStartRefusesABrokenFunction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	before := len(children(t))
	edit := func(tpl *cfntemplate.Template) error {
		for _, r := range tpl.OfType(cfntemplate.TypeFunction) {
			if r.Properties["FunctionName"] == "keyferry-rotate" {
				r.Metadata["aws:asset:path"] = "asset.not-there"
			}
		}
		return nil
	}
	sb, err := Start(ctx, Options{Functions: FunctionsRIE, PolicyEdit: edit})
	if err == nil {
		sb.Close()
		t.Fatal("the sandbox started with a function that has no bootstrap")
	}
	if !strings.Contains(err.Error(), "keyferry-rotate") || !strings.Contains(err.Error(), "bootstrap") || strings.Count(err.Error(), "\n") > 0 {
		t.Errorf("start refused with %q; want one line naming keyferry-rotate and its missing bootstrap", err)
	}
	t.Logf("refused: %v", err)
	// Close reaps what it stops; give the kernel a moment to drop them.
	deadline := time.Now().Add(10 * time.Second)
	for len(children(t)) > before && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := children(t); len(left) > before {
		t.Errorf("processes left running after the refused start: %v", left)
	}
}
