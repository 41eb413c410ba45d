package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture writes the files a valid config points at and returns YAML.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mod := filepath.Join(dir, "module.so")
	pin := filepath.Join(dir, "pin")
	pem := filepath.Join(dir, "cp.pem")
	for _, f := range []string{mod, pin, pem} {
		if err := os.WriteFile(f, []byte("1234\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return `agent_id: test-agent
endpoint: https://abc.execute-api.eu-west-1.amazonaws.com/prod
region: eu-west-1
state_dir: ` + dir + `
hsm: {module: ` + mod + `, token_label: kf, pin_file: ` + pin + `, pool_size: 2}
control_plane: {public_key_file: ` + pem + `}
policy:
  accounts: ["111122223333"]
  regions: [eu-west-1]
  groups: [payments]
  key_specs: [SYMMETRIC_DEFAULT]
tunnel: {heartbeat_interval: 30s, max_connection_age: 1h}
audit: {path: ` + filepath.Join(dir, "audit.jsonl") + `}
`
}

func TestValidConfigAndDefaults(t *testing.T) {
	c, err := Parse([]byte(fixture(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Tunnel.HeartbeatInterval.D() != 30*time.Second || c.Policy.MinWrappingKeyBits != 3072 || c.HSM.PoolSize != 2 {
		t.Fatalf("parsed %+v", c)
	}
	pin, err := c.HSM.ReadPIN()
	if err != nil || pin != "1234" {
		t.Fatalf("pin %q %v", pin, err)
	}
}

// TestValidationListsEveryProblem: one pass names every broken path.
func TestValidationListsEveryProblem(t *testing.T) {
	y := `agent_id: "bad id!"
endpoint: ftp://x
region: Europe
hsm: {module: /nonexistent.so, token_label: a, token_serial: b, pool_size: 0}
control_plane: {public_key_file: /nonexistent.pem, clock_skew: 1h}
policy:
  accounts: ["123"]
  regions: [mars]
  groups: [" "]
  key_specs: [AES_128]
  min_wrapping_key_bits: 1024
  global_rate: {per_minute: 0, burst: 0}
  replay_cache_size: 1
tunnel: {heartbeat_interval: 11m, max_connection_age: 3h, backoff_initial: 0s, backoff_max: 0s}
audit: {path: ""}
metrics: {listen: "0.0.0.0:9464"}
log_level: loud
`
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []string{"agent_id", "endpoint", "region", "log_level", "hsm.module", "hsm", "hsm.pool_size",
		"control_plane.public_key_file", "control_plane.clock_skew", "policy.accounts[0]", "policy.regions[0]",
		"policy.groups[0]", "policy.key_specs[0]", "policy.min_wrapping_key_bits", "policy.global_rate.per_minute",
		"policy.global_rate.burst", "policy.replay_cache_size", "tunnel.heartbeat_interval", "tunnel.max_connection_age",
		"tunnel.backoff_initial", "audit.path", "metrics.listen"}
	got := map[string]bool{}
	for _, p := range ve.Problems {
		got[p.Path] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("no problem reported for %s; got:\n%v", w, err)
		}
	}
}

func TestPolicyListDefaultsAndExplicitEmpty(t *testing.T) {
	y := strings.Replace(fixture(t), "  groups: [payments]\n  key_specs: [SYMMETRIC_DEFAULT]\n", "", 1)
	c, err := Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Policy.Groups) != 1 || c.Policy.Groups[0] != "*" || len(c.Policy.KeySpecs) != 12 || c.HSMPool != "kf" {
		t.Fatalf("defaults: groups %v, key specs %v, hsm_pool %q", c.Policy.Groups, c.Policy.KeySpecs, c.HSMPool)
	}
	y = strings.Replace(fixture(t), "  groups: [payments]\n", "  groups: []\n", 1)
	c, _ = Parse([]byte(y))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "policy.groups") {
		t.Fatalf("explicit empty group list accepted: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "agent_id: a\nbogus: 1\n", "bogus"},
		{"typo nested", "hsm: {pool_sise: 3}\n", "pool_sise"},
		{"bad duration", "tunnel: {heartbeat_interval: soon}\n", "duration"},
		{"two documents", "agent_id: a\n---\nagent_id: b\n", "more than one"},
		{"empty", "", "empty"},
		{"wrong type", "hsm: {pool_size: many}\n", "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want error mentioning %q, got %v", tc.want, err)
			}
		})
	}
}

func TestPINFromEnvAndFilePermissions(t *testing.T) {
	t.Setenv("KF_TEST_PIN", "9876")
	h := HSM{PINEnv: "KF_TEST_PIN"}
	if pin, err := h.ReadPIN(); err != nil || pin != "9876" {
		t.Fatalf("env pin %q %v", pin, err)
	}
	if _, err := (HSM{PINEnv: "KF_TEST_PIN_UNSET"}).ReadPIN(); err == nil {
		t.Fatal("unset env accepted")
	}
	y := strings.Replace(fixture(t), "pool_size: 2", "pool_size: 2, pin_env: KF_TEST_PIN", 1)
	c, _ := Parse([]byte(y))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "only one of pin_file and pin_env") {
		t.Fatalf("both pin sources accepted: %v", err)
	}
	c, _ = Parse([]byte(fixture(t)))
	os.Chmod(c.HSM.PINFile, 0o644)
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "hsm.pin_file") {
		t.Fatalf("world-readable pin file accepted: %v", err)
	}
}

// TestExampleConfigParses keeps deploy/agent.example.yaml in sync: it parses
// strictly and its only problems are files absent on this machine.
func TestExampleConfigParses(t *testing.T) {
	data, err := os.ReadFile("../deploy/agent.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var ve *ValidationError
	if err := c.Validate(); err != nil && errors.As(err, &ve) {
		for _, p := range ve.Problems {
			switch p.Path {
			case "hsm.pin_file", "control_plane.public_key_file", "hsm.module":
			default:
				t.Errorf("example config: %s", p)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("agent_id: a\nhsm: {pool_size: 3}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		_ = c.Validate() // must not panic
	})
}
