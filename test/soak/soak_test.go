package soak

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSoakShort is the small soak that runs in `make test`: 40 s of
// rotations under every fault kind, then the full invariant audit.
func TestSoakShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "keyferry-soak-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	rep, err := Run(ctx, Config{Duration: 40 * time.Second, Seed: 10, Progress: testWriter{t}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			// The agents' own logs are the first thing to read after a
			// violation: the first agent's agent.log and the pool's
			// <agent id>.log.
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					lines := strings.Split(strings.TrimSpace(string(b)), "\n")
					t.Logf("%s (last %d lines):\n%s", filepath.Base(l), min(60, len(lines)), strings.Join(lines[max(0, len(lines)-60):], "\n"))
				}
			}
		}
	}()
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("soak report:\n%s", b)
	if len(rep.InvariantViolations) > 0 {
		t.Errorf("%d invariant violations: %v", len(rep.InvariantViolations), rep.InvariantViolations)
	}
	if rep.Rotations == 0 || rep.FaultsTotal == 0 {
		t.Errorf("soak did nothing: %d rotations, %d faults", rep.Rotations, rep.FaultsTotal)
	}
	if rep.JobsSucceeded < 5 {
		t.Errorf("only %d jobs succeeded (at least the 5 final clean rotations must)", rep.JobsSucceeded)
	}
	if rep.GenerationsChecked == 0 || rep.MaterialsScanned == 0 || rep.AuditRecords == 0 {
		t.Errorf("audit checked nothing: generations %d, materials %d, audit records %d", rep.GenerationsChecked, rep.MaterialsScanned, rep.AuditRecords)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}
