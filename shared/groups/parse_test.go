package groups

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
	"gopkg.in/yaml.v3"
)

const (
	samplePath    = "../../examples/key-groups.yaml"
	badSamplePath = "../../examples/key-groups.bad.yaml"
)

func TestSampleFileLoads(t *testing.T) {
	cfg, err := Load(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	// The sandbox sample must cover these kinds of group.
	want := map[string]struct {
		spec keyspec.Spec
		mode Mode
	}{
		"payments-data":    {keyspec.SymmetricDefault, ModeInPlace},
		"archive-data":     {keyspec.SymmetricDefault, ModeAliasSwap},
		"webhook-mac":      {keyspec.HMAC256, ModeAliasSwap},
		"token-signing":    {keyspec.ECCNISTP256, ModeAliasSwap},
		"document-signing": {keyspec.RSA2048, ModeAliasSwap},
	}
	if len(cfg.Groups) != len(want) {
		t.Fatalf("%d groups, want %d", len(cfg.Groups), len(want))
	}
	alarms, expiring := 0, 0
	for _, g := range cfg.Groups {
		w, ok := want[g.Name]
		if !ok || g.KeySpec != w.spec || g.Mode != w.mode {
			t.Fatalf("group %s: %s %s", g.Name, g.KeySpec, g.Mode)
		}
		if g.Account != "111122223333" || g.Region != "us-east-1" || g.HSMPool != "sandbox" || !strings.HasPrefix(g.Schedule, "rate(") {
			t.Fatalf("group %s: %s %s %s %s", g.Name, g.Account, g.Region, g.HSMPool, g.Schedule)
		}
		abs, _ := filepath.Abs("../../examples/policies/default.json")
		if p, _ := filepath.Abs(g.PolicyPath); p != abs || len(g.Policy) == 0 {
			t.Fatalf("group %s: policy %q", g.Name, g.PolicyPath)
		}
		alarms += len(g.Alarms)
		if g.MaterialExpires() {
			expiring++
		}
	}
	if alarms == 0 || expiring == 0 {
		t.Fatalf("sample has %d alarms and %d expiring groups", alarms, expiring)
	}
	if got := cfg.Targets(); len(got) != 1 || got[0] != (Target{"111122223333", "us-east-1"}) {
		t.Fatalf("Targets() = %v", got)
	}
}

// The bad sample reports every mistake at once, in file order.
func TestBadSampleReportsEveryProblem(t *testing.T) {
	_, err := Load(badSamplePath)
	want := []Problem{
		{"hsm_pools[0].agents[0].public_key", "not a PEM EC P-256 public key"},
		{"groups[0].schedule", "cron expression needs 6 fields, got 5"},
		{"groups[0].wrapping", "SYMMETRIC_DEFAULT cannot be wrapped with RSA_AES_KEY_WRAP_SHA_256 under RSA_4096"},
		{"groups[1].schedul", `unknown field (did you mean "schedule"?)`},
		{"groups[1].mode", "only for SYMMETRIC_DEFAULT"},
		{"groups[1].schedule", `singular unit "day"`},
		{"groups[1].name", "duplicate of groups[0]"},
		{"groups[1].alias", "already used by groups[0]"},
		{"groups[2].key_usage", "not a legal key usage for HMAC_256"},
		{"groups[2].schedule_timezone", "not an IANA time zone"},
		{"groups[2].alias", "reserved for AWS"},
		{"groups[2].tags.aws:owner", "reserved by AWS"},
		{"groups[2].tags.keyferry:group", "set by keyferry"},
		{"groups[2].reimport_margin", "the default 7d must be shorter than material_expiration 5d"},
		{"groups[2].hsm_pool", `"datacenter-2" is not defined`},
	}
	got := problemsOf(t, err)
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i := range want {
		if got[i].Path != want[i].Path || !strings.Contains(got[i].Message, want[i].Message) {
			t.Fatalf("problem %d = %q, want %q containing %q\nall:\n%v", i, got[i], want[i].Path, want[i].Message, err)
		}
	}
	// Error() lists them all, one per line.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || lines[1] != got[1].Path+": "+got[1].Message {
		t.Fatalf("Error() has %d lines:\n%s", len(lines), err)
	}
}

func TestMultipleErrorsAllReported(t *testing.T) {
	doc := baseDoc(t)
	doc["version"] = 3
	g := group0(doc)
	g["name"] = "Bad Name"
	g["schedule"] = "rate(1 days)"
	g["account"] = "123"
	g["wrapping"] = m{"algorithm": "RSAES_OAEP_SHA_1", "key_spec": "RSA_1024"}
	g2 := baseGroup("g1")
	g2["key_spec"] = "RSA_2048"
	g2["mode"] = "hybrid"
	g2["alarms"] = []any{m{"name": "a", "operation": "Encrypt", "type": "anomaly", "period": "30s"}}
	addGroup(doc, g2)
	_, err := Parse(marshalDoc(t, doc))
	want := []Problem{
		{"version", "unsupported version 3"},
		{"groups[0].name", "not a DNS label"},
		{"groups[0].schedule", "singular"},
		{"groups[0].account", "12-digit"},
		{"groups[0].wrapping.key_spec", "RSA_1024"},
		{"groups[1].mode", "only for SYMMETRIC_DEFAULT"},
		{"groups[1].alarms[0].band_width", "> 0"},
		{"groups[1].alarms[0].period", "multiple of 60s"},
	}
	got := problemsOf(t, err)
	if len(got) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(got), len(want), err)
	}
	for _, w := range want {
		requireProblem(t, err, w.Path, w.Message)
	}
}

// Security invariant 5: bad input of any kind (here: an invalid config) gets
// a clear error and changes no state. Parse and Load return no Config on
// error, and Load never writes to the config or policy files.
func TestInvariant5BadInputClearErrorNoStateChange(t *testing.T) {
	dir := t.TempDir()
	bad, err := os.ReadFile(badSamplePath)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile("../../examples/policies/default.json")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "key-groups.yaml")
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policies/default.json"), policy, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, input := range [][]byte{bad, []byte("{"), []byte("version: 1\ngroups: 7\n"), nil, []byte("\xff\xfe")} {
		cfg, err := Parse(input)
		var ve *ValidationError
		if cfg != nil || !errors.As(err, &ve) || len(ve.Problems) == 0 || strings.TrimSpace(err.Error()) == "" {
			t.Fatalf("Parse(%q) = %v, %v", input, cfg, err)
		}
	}
	cfg, err := Load(cfgPath)
	if cfg != nil || err == nil {
		t.Fatalf("Load = %v, %v", cfg, err)
	}
	after, _ := os.ReadFile(cfgPath)
	afterPolicy, _ := os.ReadFile(filepath.Join(dir, "policies/default.json"))
	entries, _ := os.ReadDir(dir)
	if !bytes.Equal(after, bad) || !bytes.Equal(afterPolicy, policy) || len(entries) != 2 {
		t.Fatal("Load changed files on disk")
	}
	// A missing file is a plain error, not a ValidationError.
	_, err = Load(filepath.Join(dir, "nope.yaml"))
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

func TestValidationErrorFormat(t *testing.T) {
	e := &ValidationError{Problems: []Problem{{"groups[2].schedule", "bad"}, {"", "empty document"}}}
	if got, want := e.Error(), "groups[2].schedule: bad\nempty document"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// roundTrip marshals cfg and parses it again.
func roundTrip(t *testing.T, cfg *Config) *Config {
	t.Helper()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("re-parse of marshalled config failed: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(cfg, back) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", cfg, back, out)
	}
	return back
}

func TestSampleRoundTrip(t *testing.T) {
	data, err := os.ReadFile(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cfg)
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{samplePath, badSamplePath} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(validYAML))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			var ve *ValidationError
			if cfg != nil || !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Parse error contract broken: %v, %T %v", cfg, err, err)
			}
			return
		}
		roundTrip(t, cfg)
	})
}
