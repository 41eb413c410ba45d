package bench

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func moduleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func buildAgent(t testing.TB, root, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "keyferry-agent")
	cmd := exec.Command("go", "build", "-o", bin, "./agent/cmd/keyferry-agent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v: %s", err, out)
	}
	return bin
}
