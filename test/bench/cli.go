package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// CLIWalkthrough runs testdata/cli-walkthrough.sh (AWS CLI + openssl, one
// key at a time) for count keys with env (the sandbox's AWS CLI
// environment) and returns its wall time.
func CLIWalkthrough(ctx context.Context, script string, env []string, count int, prefix, wrappingKeySpec, workDir string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "bash", script, fmt.Sprint(count), prefix, wrappingKeySpec, workDir)
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("bench: %s: %w: %s", script, err, tail(out, 2000))
	}
	return d, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
