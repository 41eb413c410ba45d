package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSandboxOnceJSON: `sandbox --once --json` (the binary, run as its own
// process with a clean environment) exits 0 and prints every sample group
// verified with the keys the issue names, and the endpoints; the
// multi-Region group lists its replica, verified.
func TestSandboxOnceJSON(t *testing.T) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	modDir := filepath.Dir(strings.TrimSpace(string(root)))
	bin := filepath.Join(t.TempDir(), "sandbox")
	build := exec.Command("go", "build", "-o", bin, "./test/cmd/sandbox")
	build.Dir = modDir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./test/cmd/sandbox: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--once", "--json")
	cmd.Dir = modDir
	// This process exports the running sandbox's AWS_* variables; the
	// subprocess must bring up its own system.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "KEYFERRY_") && !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sandbox --once --json: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}

	var doc struct {
		Groups    []map[string]json.RawMessage `json:"groups"`
		Endpoints map[string]string            `json:"endpoints"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"kms", "dynamodb", "websocket"} {
		if !strings.HasPrefix(doc.Endpoints[k], "http") && !strings.HasPrefix(doc.Endpoints[k], "ws") {
			t.Errorf("endpoint %s = %q", k, doc.Endpoints[k])
		}
	}
	want := map[string]string{
		"payments-data": "in-place", "archive-data": "alias-swap", "webhook-mac": "alias-swap",
		"token-signing": "alias-swap", "ledger-signing": "alias-swap",
		"document-signing": "alias-swap", "backup-encryption": "alias-swap", "global-data": "alias-swap",
	}
	// The multi-Region group's replica Regions (the sample's one: primary
	// us-east-1, replica eu-west-1).
	replicas := map[string][]string{"global-data": {"eu-west-1"}}
	if len(doc.Groups) != len(want) {
		t.Fatalf("%d groups, want %d:\n%s", len(doc.Groups), len(want), stdout.String())
	}
	for _, g := range doc.Groups {
		for _, k := range []string{"name", "mode", "key_spec", "alias", "key_arn", "key_material_id", "generations", "last_job_state", "verified"} {
			if _, ok := g[k]; !ok {
				t.Errorf("group %s lacks key %q", g["name"], k)
			}
		}
		var name, mode, state, arn string
		var verified bool
		var gens int
		json.Unmarshal(g["name"], &name)
		json.Unmarshal(g["mode"], &mode)
		json.Unmarshal(g["last_job_state"], &state)
		json.Unmarshal(g["key_arn"], &arn)
		json.Unmarshal(g["verified"], &verified)
		json.Unmarshal(g["generations"], &gens)
		if m, ok := want[name]; !ok || m != mode {
			t.Errorf("group %q mode %q, want %q", name, mode, m)
		}
		if !verified || state != "SUCCEEDED" || gens != 1 || !strings.HasPrefix(arn, "arn:aws:kms:") {
			t.Errorf("group %s: verified=%v state=%s generations=%d key_arn=%q", name, verified, state, gens, arn)
		}
		var reps []struct {
			Region   string `json:"region"`
			KeyARN   string `json:"key_arn"`
			Verified bool   `json:"verified"`
		}
		json.Unmarshal(g["replicas"], &reps)
		if len(reps) != len(replicas[name]) {
			t.Errorf("group %s: replicas %s, want %v", name, g["replicas"], replicas[name])
		}
		for i, r := range reps {
			id := arn[strings.LastIndex(arn, "/")+1:]
			if i < len(replicas[name]) && (r.Region != replicas[name][i] || !r.Verified || !strings.HasPrefix(id, "mrk-") ||
				r.KeyARN != "arn:aws:kms:"+r.Region+":111122223333:key/"+id) {
				t.Errorf("group %s: replica %+v, want %s verified with the primary's key id %s", name, r, replicas[name][i], id)
			}
		}
	}
}
