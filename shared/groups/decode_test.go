package groups

import (
	"strings"
	"testing"
)

// validYAML is a minimal valid document written by hand, so decode cases can
// splice raw YAML (anchors, duplicates, odd types) that yaml.Marshal never emits.
const validYAML = `version: 1
hsm_pools:
  - name: pool-a
groups:
  - name: g0
    key_spec: SYMMETRIC_DEFAULT
    schedule: rate(7 days)
    alias: alias/g0
    policy_file: p.json
    account: "111122223333"
    region: us-east-1
    hsm_pool: pool-a
`

func TestDecodeProblems(t *testing.T) {
	cases := []struct {
		name       string
		doc        string
		path, frag string
	}{
		{name: "unknown top-level key", doc: validYAML + "extra: 1\n", path: "extra", frag: "unknown field"},
		{name: "unknown top-level key suggestion", doc: validYAML + "hsm_pool: x\n", path: "hsm_pool", frag: `did you mean "hsm_pools"?`},
		{name: "unknown group key suggestion", doc: validYAML + "    schedul: rate(1 day)\n", path: "groups[0].schedul", frag: `did you mean "schedule"?`},
		{name: "unknown key hyphenated", doc: validYAML + "    key-usage: ENCRYPT_DECRYPT\n", path: "groups[0].key-usage", frag: `did you mean "key_usage"?`},
		{name: "unknown wrapping key", doc: validYAML + "    wrapping: {algo: auto}\n", path: "groups[0].wrapping.algo", frag: "unknown field"},
		{name: "unknown pool key", doc: strings.Replace(validYAML, "  - name: pool-a\n", "  - name: pool-a\n    size: 3\n", 1), path: "hsm_pools[0].size", frag: "unknown field"},
		{name: "unknown agent key", doc: strings.Replace(validYAML, "  - name: pool-a\n", "  - name: pool-a\n    agents: [{id: a, key: b}]\n", 1), path: "hsm_pools[0].agents[0].key", frag: "unknown field"},
		{name: "unknown control_plane key", doc: validYAML + "control_plane: {signing_key: x}\n", path: "control_plane.signing_key", frag: "unknown field"},
		{name: "duplicate key", doc: validYAML + "    alias: alias/again\n", path: "groups[0].alias", frag: "duplicate key"},
		{name: "merge key", doc: validYAML + "    <<: {region: eu-west-1}\n", path: `groups[0]["<<"]`, frag: "merge keys are not supported"},
		{name: "non-scalar key", doc: validYAML + "    ? [a]\n    : b\n", path: "groups[0]", frag: "mapping key must be a string"},
		{name: "string wanted", doc: validYAML + "    description: [a, b]\n", path: "groups[0].description", frag: "want a string, got a list"},
		{name: "integer wanted", doc: strings.Replace(validYAML, "version: 1", "version: one", 1), path: "version", frag: "cannot unmarshal"},
		{name: "mapping wanted", doc: validYAML + "    tags: [a]\n", path: "groups[0].tags", frag: "want a mapping, got a list"},
		{name: "tag value mapping", doc: validYAML + "    tags: {a: {b: c}}\n", path: "groups[0].tags.a", frag: "want a string, got a mapping"},
		{name: "list wanted", doc: validYAML + "    alarms: {a: b}\n", path: "groups[0].alarms", frag: "want a list, got a mapping"},
		{name: "group not a mapping", doc: validYAML + "  - just-a-string\n", path: "groups[1]", frag: "want a mapping"},
		{name: "duration wanted", doc: validYAML + "    reimport_margin: [1]\n", path: "groups[0].reimport_margin", frag: "want a duration"},
		{name: "document not a mapping", doc: "- a\n- b\n", path: "", frag: "must be a mapping"},
		{name: "empty document", doc: "", path: "", frag: "empty document"},
		{name: "comment only", doc: "# nothing\n", path: "", frag: "empty document"},
		{name: "syntax error", doc: "version: [1\n", path: "", frag: "not valid YAML or JSON"},
		{name: "two documents", doc: validYAML + "---\nversion: 1\n", path: "", frag: "exactly one YAML document"},
		{name: "tab indentation", doc: "version: 1\n\tgroups: []\n", path: "", frag: "not valid YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.doc))
			if cfg != nil {
				t.Fatal("got a Config with errors")
			}
			requireProblem(t, err, tc.path, tc.frag)
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	cases := []struct {
		name  string
		doc   string
		check func(t *testing.T, c *Config)
	}{
		{name: "anchors and aliases", doc: `version: 1
hsm_pools: [{name: pool-a}]
groups:
  - &base
    name: g0
    key_spec: SYMMETRIC_DEFAULT
    schedule: rate(7 days)
    alias: alias/g0
    policy_file: p.json
    account: &acct "111122223333"
    region: us-east-1
    hsm_pool: pool-a
  - name: g1
    key_spec: HMAC_384
    schedule: rate(7 days)
    alias: alias/g1
    policy_file: p.json
    account: *acct
    region: us-east-1
    hsm_pool: pool-a
`, check: func(t *testing.T, c *Config) {
			if c.Groups[1].Account != "111122223333" {
				t.Fatalf("alias not followed: %q", c.Groups[1].Account)
			}
		}},
		{name: "JSON", doc: `{"version": 1, "hsm_pools": [{"name": "pool-a"}], "groups": [{"name": "g0", "key_spec": "RSA_4096",
"key_usage": "ENCRYPT_DECRYPT", "schedule": "cron(0 3 ? * SUN *)", "schedule_timezone": "Europe/Berlin", "alias": "alias/g0",
"policy_file": "p.json", "account": "111122223333", "region": "eu-central-1", "hsm_pool": "pool-a", "material_expiration": "never",
"alarms": [{"name": "a", "operation": "Decrypt", "type": "threshold", "threshold": 1.5}]}]}`, check: func(t *testing.T, c *Config) {
			g := c.Groups[0]
			if g.KeySpec != "RSA_4096" || g.ScheduleTimezone != "Europe/Berlin" || g.Alarms[0].Threshold != 1.5 {
				t.Fatalf("%+v", g)
			}
		}},
		{name: "null fields are unset", doc: validYAML + "    description: ~\n    mode:\n", check: func(t *testing.T, c *Config) {
			if c.Groups[0].Mode != ModeAliasSwap {
				t.Fatalf("mode %q", c.Groups[0].Mode)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

// Aliases can make a small document decode into a huge one (here 400 groups
// of 400 alarms each, from about 5 KB): decoding stops at maxNodes and the
// problem list stays bounded.
func TestDecodeAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nhsm_pools: [{name: pool-a}]\ngroups:\n  - &g\n    name: g0\n    alarms:\n      - &a {name: x, operation: Decrypt, type: threshold}\n")
	for range 399 {
		b.WriteString("      - *a\n")
	}
	for range 399 {
		b.WriteString("  - *g\n")
	}
	if b.Len() > 10000 {
		t.Fatalf("bomb is %d bytes", b.Len())
	}
	_, err := Parse([]byte(b.String()))
	requireProblem(t, err, "", "document too large")
	ps := problemsOf(t, err)
	if len(ps) > maxProblems+1 {
		t.Fatalf("%d problems reported, want at most %d", len(ps), maxProblems+1)
	}
	requireProblem(t, err, "", "more problems not shown")
}
