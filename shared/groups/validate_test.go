package groups

import (
	"crypto/elliptic"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

type validateCase struct {
	name string
	mut  func(doc, g m)
	// path and frag name the expected problem; an empty path means the
	// document must be valid.
	path, frag string
	check      func(t *testing.T, c *Config)
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := baseDoc(t)
			tc.mut(doc, group0(doc))
			cfg, err := Parse(marshalDoc(t, doc))
			if tc.path == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
			} else {
				requireProblem(t, err, tc.path, tc.frag)
				if cfg != nil {
					t.Fatal("Parse returned a Config along with an error")
				}
			}
			if tc.check != nil && cfg != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func addGroup(doc m, g m) { doc["groups"] = append(doc["groups"].([]any), g) }

func TestValidateGroupFields(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	runValidateCases(t, []validateCase{
		{name: "base is valid", mut: func(doc, g m) {}, check: func(t *testing.T, c *Config) {
			g := c.Groups[0]
			want := Group{Name: "g0", KeySpec: keyspec.SymmetricDefault, KeyUsage: keyspec.EncryptDecrypt, Mode: ModeAliasSwap,
				Schedule: "rate(30 days)", ScheduleTimezone: "UTC", ScheduleWindow: DefaultScheduleWindow, Alias: "alias/g0", PolicyFile: "policies/default.json",
				Account: "111122223333", Region: "us-east-1", MaterialExpiration: Expiration{Never: true}, PreviousKey: PreviousKeep,
				HSMPool: "pool-a", Wrapping: Wrapping{Algorithm: AutoAlgorithm, KeySpec: AutoKeySpec}}
			if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", want) {
				t.Fatalf("defaults not applied visibly:\n got %+v\nwant %+v", g, want)
			}
			if c.ControlPlane.SigningKeyAlias != DefaultSigningKeyAlias {
				t.Fatalf("signing alias default = %q", c.ControlPlane.SigningKeyAlias)
			}
		}},
		// name
		{name: "name missing", mut: func(doc, g m) { delete(g, "name") }, path: "groups[0].name", frag: "required"},
		{name: "name not DNS", mut: func(doc, g m) { g["name"] = "Payments_Data" }, path: "groups[0].name", frag: "not a DNS label"},
		{name: "name too long", mut: func(doc, g m) { g["name"] = long(64) }, path: "groups[0].name", frag: "not a DNS label"},
		{name: "name duplicate", mut: func(doc, g m) {
			g2 := baseGroup("g0")
			g2["alias"] = "alias/other"
			addGroup(doc, g2)
		}, path: "groups[1].name", frag: "duplicate of groups[0]"},
		// key_spec, key_usage
		{name: "key_spec missing", mut: func(doc, g m) { delete(g, "key_spec") }, path: "groups[0].key_spec", frag: "required"},
		{name: "key_spec not importable", mut: func(doc, g m) { g["key_spec"] = "ML_DSA_44" }, path: "groups[0].key_spec", frag: "not an importable key spec"},
		{name: "key_usage default is first usage", mut: func(doc, g m) { g["key_spec"] = "ECC_NIST_P384" }, check: func(t *testing.T, c *Config) {
			if c.Groups[0].KeyUsage != keyspec.SignVerify {
				t.Fatalf("key_usage = %s", c.Groups[0].KeyUsage)
			}
		}},
		{name: "key_usage legal", mut: func(doc, g m) { g["key_spec"] = "RSA_3072"; g["key_usage"] = "SIGN_VERIFY" }},
		{name: "key_usage illegal for spec", mut: func(doc, g m) { g["key_usage"] = "SIGN_VERIFY" }, path: "groups[0].key_usage", frag: "not a legal key usage for SYMMETRIC_DEFAULT"},
		{name: "key_usage unknown", mut: func(doc, g m) { g["key_usage"] = "DECRYPT_ONLY" }, path: "groups[0].key_usage", frag: "not a KMS key usage"},
		// mode
		{name: "mode unknown", mut: func(doc, g m) { g["mode"] = "swap" }, path: "groups[0].mode", frag: "not one of"},
		{name: "mode in-place symmetric", mut: func(doc, g m) { g["mode"] = "in-place" }, check: func(t *testing.T, c *Config) {
			if g := c.Groups[0]; g.RotationCap != DefaultRotationCap || g.PreviousKey != "" {
				t.Fatalf("in-place defaults: cap %d previous %q", g.RotationCap, g.PreviousKey)
			}
		}},
		{name: "mode in-place on RSA", mut: func(doc, g m) { g["key_spec"] = "RSA_2048"; g["mode"] = "in-place" }, path: "groups[0].mode", frag: "only for SYMMETRIC_DEFAULT"},
		{name: "mode hybrid on HMAC", mut: func(doc, g m) { g["key_spec"] = "HMAC_256"; g["mode"] = "hybrid" }, path: "groups[0].mode", frag: "only for SYMMETRIC_DEFAULT"},
		// schedule
		{name: "schedule missing", mut: func(doc, g m) { delete(g, "schedule") }, path: "groups[0].schedule", frag: "required"},
		{name: "schedule cron 5 fields", mut: func(doc, g m) { g["schedule"] = "cron(0 3 * * ?)" }, path: "groups[0].schedule", frag: "cron expression needs 6 fields, got 5"},
		{name: "schedule cron two problems", mut: func(doc, g m) { g["schedule"] = "cron(61 3 * * * *)" }, path: "groups[0].schedule", frag: "needs ? in day-of-month or day-of-week"},
		{name: "schedule cron valid", mut: func(doc, g m) { g["schedule"] = "cron(0 3 ? * MON-FRI *)" }},
		// schedule_timezone
		{name: "timezone valid", mut: func(doc, g m) { g["schedule_timezone"] = "Europe/Paris" }},
		{name: "timezone invalid", mut: func(doc, g m) { g["schedule_timezone"] = "Europe/Atlantis" }, path: "groups[0].schedule_timezone", frag: "not an IANA time zone"},
		{name: "timezone Local refused", mut: func(doc, g m) { g["schedule_timezone"] = "Local" }, path: "groups[0].schedule_timezone", frag: "not an IANA time zone"},
		// alias
		{name: "alias missing", mut: func(doc, g m) { delete(g, "alias") }, path: "groups[0].alias", frag: "required"},
		{name: "alias without prefix", mut: func(doc, g m) { g["alias"] = "payments" }, path: "groups[0].alias", frag: "must start with alias/"},
		{name: "alias aws reserved", mut: func(doc, g m) { g["alias"] = "alias/aws/s3" }, path: "groups[0].alias", frag: "reserved for AWS"},
		{name: "alias charset", mut: func(doc, g m) { g["alias"] = "alias/pay.ments" }, path: "groups[0].alias", frag: "only a-z A-Z 0-9 / _ -"},
		{name: "alias too long", mut: func(doc, g m) { g["alias"] = "alias/" + long(251) }, path: "groups[0].alias", frag: "KMS allows 256"},
		{name: "alias 256 ok", mut: func(doc, g m) { g["alias"] = "alias/" + long(250) }},
		{name: "alias duplicate same account and region", mut: func(doc, g m) {
			g2 := baseGroup("g1")
			g2["alias"] = "alias/g0"
			addGroup(doc, g2)
		}, path: "groups[1].alias", frag: "already used by groups[0]"},
		{name: "alias reused in another region", mut: func(doc, g m) {
			g2 := baseGroup("g1")
			g2["alias"] = "alias/g0"
			g2["region"] = "eu-west-1"
			addGroup(doc, g2)
		}},
		{name: "alias is the signing key alias", mut: func(doc, g m) { g["alias"] = DefaultSigningKeyAlias }, path: "groups[0].alias", frag: "control-plane signing key alias"},
		// description
		{name: "description too long", mut: func(doc, g m) { g["description"] = long(8193) }, path: "groups[0].description", frag: "KMS allows 8192"},
		// tags
		{name: "tags valid", mut: func(doc, g m) { g["tags"] = m{"team": "payments", "empty": ""} }},
		{name: "tag key too long", mut: func(doc, g m) { g["tags"] = m{long(129): "x"} }, path: "groups[0].tags." + long(129), frag: "1-128"},
		{name: "tag value too long", mut: func(doc, g m) { g["tags"] = m{"team": long(257)} }, path: "groups[0].tags.team", frag: "0-256"},
		{name: "tag key empty", mut: func(doc, g m) { g["tags"] = m{"": "x"} }, path: `groups[0].tags[""]`, frag: "1-128"},
		{name: "tag key aws prefix", mut: func(doc, g m) { g["tags"] = m{"AWS:owner": "x"} }, path: "groups[0].tags.AWS:owner", frag: "reserved by AWS"},
		{name: "tag key keyferry:group", mut: func(doc, g m) { g["tags"] = m{"keyferry:group": "x"} }, path: "groups[0].tags.keyferry:group", frag: "set by keyferry"},
		{name: "tag key keyferry prefix", mut: func(doc, g m) { g["tags"] = m{"keyferry:owner": "x"} }, path: "groups[0].tags.keyferry:owner", frag: "reserved for keyferry"},
		{name: "too many tags", mut: func(doc, g m) {
			tags := m{}
			for i := range 50 {
				tags[fmt.Sprintf("t%d", i)] = "v"
			}
			g["tags"] = tags
		}, path: "groups[0].tags", frag: "KMS allows 50"},
		// policy_file (Parse only checks presence)
		{name: "policy_file missing", mut: func(doc, g m) { delete(g, "policy_file") }, path: "groups[0].policy_file", frag: "required"},
		// account, region
		{name: "account 11 digits", mut: func(doc, g m) { g["account"] = "11112222333" }, path: "groups[0].account", frag: "12-digit"},
		{name: "account missing", mut: func(doc, g m) { delete(g, "account") }, path: "groups[0].account", frag: "required"},
		{name: "account as integer keeps digits", mut: func(doc, g m) { g["account"] = 111122223333 }},
		{name: "region upper case", mut: func(doc, g m) { g["region"] = "US-EAST-1" }, path: "groups[0].region", frag: "not an AWS region"},
		{name: "region gov", mut: func(doc, g m) { g["region"] = "us-gov-west-1" }},
		{name: "region missing", mut: func(doc, g m) { delete(g, "region") }, path: "groups[0].region", frag: "required"},
		// material_expiration, reimport_margin
		{name: "expiration 90d default margin", mut: func(doc, g m) { g["material_expiration"] = "90d" }, check: func(t *testing.T, c *Config) {
			g := &c.Groups[0]
			if !g.MaterialExpires() || g.ValidFor() != 90*24*time.Hour || g.ReimportMargin.Std() != DefaultReimportMargin {
				t.Fatalf("expires %v valid %v margin %v", g.MaterialExpires(), g.ValidFor(), g.ReimportMargin)
			}
		}},
		{name: "expiration go duration", mut: func(doc, g m) { g["material_expiration"] = "720h"; g["reimport_margin"] = "36h" }},
		{name: "expiration 365d", mut: func(doc, g m) { g["material_expiration"] = "365d" }},
		{name: "expiration 366d", mut: func(doc, g m) { g["material_expiration"] = "366d" }, path: "groups[0].material_expiration", frag: "<= 365d"},
		{name: "expiration zero", mut: func(doc, g m) { g["material_expiration"] = "0d" }, path: "groups[0].material_expiration", frag: "> 0"},
		{name: "expiration garbage", mut: func(doc, g m) { g["material_expiration"] = "soon" }, path: "groups[0].material_expiration", frag: `"never" or a duration`},
		{name: "expiration bare number", mut: func(doc, g m) { g["material_expiration"] = 90 }, path: "groups[0].material_expiration", frag: "needs a unit"},
		{name: "margin not shorter", mut: func(doc, g m) { g["material_expiration"] = "30d"; g["reimport_margin"] = "30d" }, path: "groups[0].reimport_margin", frag: "must be shorter than material_expiration 30d"},
		{name: "default margin too long", mut: func(doc, g m) { g["material_expiration"] = "5d" }, path: "groups[0].reimport_margin", frag: "the default 7d"},
		{name: "margin zero", mut: func(doc, g m) { g["material_expiration"] = "30d"; g["reimport_margin"] = "0s" }, path: "groups[0].reimport_margin", frag: "> 0"},
		{name: "margin without expiration", mut: func(doc, g m) { g["reimport_margin"] = "7d" }, path: "groups[0].reimport_margin", frag: "applies only when material_expiration"},
		// previous_key
		{name: "previous_key disable", mut: func(doc, g m) { g["previous_key"] = "disable" }},
		{name: "previous_key bad", mut: func(doc, g m) { g["previous_key"] = "delete" }, path: "groups[0].previous_key", frag: "not keep or disable"},
		{name: "previous_key on in-place", mut: func(doc, g m) { g["mode"] = "in-place"; g["previous_key"] = "keep" }, path: "groups[0].previous_key", frag: "alias-swap and hybrid groups only"},
		{name: "previous_key on hybrid", mut: func(doc, g m) { g["mode"] = "hybrid"; g["previous_key"] = "disable" }},
		// hsm_pool
		{name: "hsm_pool undefined", mut: func(doc, g m) { g["hsm_pool"] = "pool-b" }, path: "groups[0].hsm_pool", frag: "not defined under hsm_pools"},
		{name: "hsm_pool missing", mut: func(doc, g m) { delete(g, "hsm_pool") }, path: "groups[0].hsm_pool", frag: "required"},
		// wrapping
		{name: "wrapping both explicit legal", mut: func(doc, g m) { g["wrapping"] = m{"algorithm": "RSAES_OAEP_SHA_256", "key_spec": "RSA_3072"} }},
		{name: "wrapping both explicit illegal", mut: func(doc, g m) {
			g["wrapping"] = m{"algorithm": "RSA_AES_KEY_WRAP_SHA_256", "key_spec": "RSA_4096"}
		}, path: "groups[0].wrapping", frag: "SYMMETRIC_DEFAULT cannot be wrapped with RSA_AES_KEY_WRAP_SHA_256 under RSA_4096"},
		{name: "wrapping P521 OAEP RSA_2048", mut: func(doc, g m) {
			g["key_spec"] = "ECC_NIST_P521"
			g["wrapping"] = m{"algorithm": "RSAES_OAEP_SHA_1", "key_spec": "RSA_2048"}
		}, path: "groups[0].wrapping", frag: "does not fit"},
		{name: "wrapping algorithm explicit with no legal key spec", mut: func(doc, g m) {
			g["key_spec"] = "RSA_2048"
			g["wrapping"] = m{"algorithm": "RSAES_OAEP_SHA_256"}
		}, path: "groups[0].wrapping", frag: "no legal wrapping for RSA_2048"},
		{name: "wrapping key_spec explicit auto algorithm", mut: func(doc, g m) {
			g["key_spec"] = "RSA_2048"
			g["wrapping"] = m{"key_spec": "RSA_2048"}
		}},
		{name: "wrapping PKCS1 rejected", mut: func(doc, g m) { g["wrapping"] = m{"algorithm": "RSAES_PKCS1_V1_5"} }, path: "groups[0].wrapping.algorithm", frag: "no longer accepted"},
		{name: "wrapping key_spec unknown", mut: func(doc, g m) { g["wrapping"] = m{"key_spec": "RSA_1024"} }, path: "groups[0].wrapping.key_spec", frag: "not auto or one of"},
		// rotation_cap
		{name: "rotation_cap hybrid 25", mut: func(doc, g m) { g["mode"] = "hybrid"; g["rotation_cap"] = 25 }},
		{name: "rotation_cap 0", mut: func(doc, g m) { g["mode"] = "hybrid"; g["rotation_cap"] = 0 }, path: "groups[0].rotation_cap", frag: "1-100"},
		{name: "rotation_cap 101", mut: func(doc, g m) { g["mode"] = "in-place"; g["rotation_cap"] = 101 }, path: "groups[0].rotation_cap", frag: "1-100"},
		{name: "rotation_cap on alias-swap", mut: func(doc, g m) { g["rotation_cap"] = 10 }, path: "groups[0].rotation_cap", frag: "in-place and hybrid groups only"},
		{name: "rotation_cap not a number", mut: func(doc, g m) { g["mode"] = "hybrid"; g["rotation_cap"] = "ten" }, path: "groups[0].rotation_cap", frag: "cannot unmarshal"},
	})
}

func TestValidateTopLevel(t *testing.T) {
	runValidateCases(t, []validateCase{
		{name: "version missing", mut: func(doc, g m) { delete(doc, "version") }, path: "version", frag: "required"},
		{name: "version 2", mut: func(doc, g m) { doc["version"] = 2 }, path: "version", frag: "unsupported version 2"},
		{name: "no groups", mut: func(doc, g m) { doc["groups"] = []any{} }, path: "groups", frag: "at least one group"},
		{name: "groups not a list", mut: func(doc, g m) { doc["groups"] = m{"g0": g} }, path: "groups", frag: "want a list"},
		{name: "signing alias custom", mut: func(doc, g m) { doc["control_plane"] = m{"signing_key_alias": "alias/cp"} }, check: func(t *testing.T, c *Config) {
			if c.ControlPlane.SigningKeyAlias != "alias/cp" {
				t.Fatal(c.ControlPlane.SigningKeyAlias)
			}
		}},
		{name: "signing alias invalid", mut: func(doc, g m) { doc["control_plane"] = m{"signing_key_alias": "cp"} }, path: "control_plane.signing_key_alias", frag: "must start with alias/"},
		{name: "pool name invalid", mut: func(doc, g m) { doc["hsm_pools"].([]any)[0].(m)["name"] = "Pool A" }, path: "hsm_pools[0].name", frag: "not a DNS label"},
		{name: "pool duplicate", mut: func(doc, g m) {
			doc["hsm_pools"] = append(doc["hsm_pools"].([]any), m{"name": "pool-a"})
		}, path: "hsm_pools[1].name", frag: "duplicate pool name"},
		{name: "pool without agents", mut: func(doc, g m) { doc["hsm_pools"] = []any{m{"name": "pool-a"}} }},
		{name: "agent without public key", mut: func(doc, g m) {
			doc["hsm_pools"].([]any)[0].(m)["agents"] = []any{m{"id": "agent-9"}}
		}},
		{name: "agent public key wrong curve", mut: func(doc, g m) {
			doc["hsm_pools"].([]any)[0].(m)["agents"] = []any{m{"id": "a1"}, m{"id": "a2", "public_key": testPEM(t, elliptic.P384())}}
		}, path: "hsm_pools[0].agents[1].public_key", frag: "not a PEM EC P-256 public key"},
		{name: "agent public key garbage", mut: func(doc, g m) {
			doc["hsm_pools"].([]any)[0].(m)["agents"] = []any{m{"id": "a1", "public_key": "hello"}}
		}, path: "hsm_pools[0].agents[0].public_key", frag: "not a PEM EC P-256 public key"},
		{name: "agent id duplicate across pools", mut: func(doc, g m) {
			doc["hsm_pools"] = append(doc["hsm_pools"].([]any), m{"name": "pool-b", "agents": []any{m{"id": "agent-1"}}})
		}, path: "hsm_pools[1].agents[0].id", frag: "duplicate of hsm_pools[0].agents[0]"},
		{name: "agent id missing", mut: func(doc, g m) {
			doc["hsm_pools"].([]any)[0].(m)["agents"] = []any{m{"public_key": ""}}
		}, path: "hsm_pools[0].agents[0].id", frag: "required"},
	})
}

func TestValidateDefaults(t *testing.T) {
	runValidateCases(t, []validateCase{
		{name: "fields inherited", mut: func(doc, g m) {
			doc["defaults"] = m{"account": "444455556666", "region": "eu-west-1", "tags": m{"env": "prod"}, "schedule": "rate(7 days)"}
			delete(g, "account")
			delete(g, "schedule")
			g["region"] = "" // empty string means unset
			g["tags"] = m{"team": "x"}
		}, check: func(t *testing.T, c *Config) {
			g := c.Groups[0]
			if g.Account != "444455556666" || g.Region != "eu-west-1" || g.Schedule != "rate(7 days)" {
				t.Fatalf("not inherited: %+v", g)
			}
			if len(g.UserTags) != 2 || g.UserTags["env"] != "prod" || g.UserTags["team"] != "x" {
				t.Fatalf("tags not merged: %v", g.UserTags)
			}
		}},
		{name: "group overrides defaults", mut: func(doc, g m) { doc["defaults"] = m{"account": "444455556666"} }, check: func(t *testing.T, c *Config) {
			if c.Groups[0].Account != "111122223333" {
				t.Fatal(c.Groups[0].Account)
			}
		}},
		{name: "wrapping merged field by field", mut: func(doc, g m) {
			doc["defaults"] = m{"wrapping": m{"key_spec": "RSA_3072"}}
			g["wrapping"] = m{"algorithm": "RSAES_OAEP_SHA_1"}
		}, check: func(t *testing.T, c *Config) {
			if w := c.Groups[0].Wrapping; w.KeySpec != keyspec.WrapRSA3072 || w.Algorithm != keyspec.RSAESOAEPSHA1 {
				t.Fatalf("%+v", w)
			}
		}},
		{name: "inherited bad value names defaults", mut: func(doc, g m) {
			doc["defaults"] = m{"schedule": "rate(0 days)"}
			delete(g, "schedule")
		}, path: "groups[0].schedule", frag: "(value from defaults)"},
		{name: "defaults name refused", mut: func(doc, g m) { doc["defaults"] = m{"name": "x"} }, path: "defaults.name", frag: "cannot be set in defaults"},
		{name: "defaults unknown key reported once at defaults", mut: func(doc, g m) { doc["defaults"] = m{"colour": "x"} }, path: "defaults.colour", frag: "unknown field"},
		{name: "mode-specific defaults dropped where meaningless", mut: func(doc, g m) {
			doc["defaults"] = m{"rotation_cap": 20, "previous_key": "disable", "reimport_margin": "3d"}
			g2 := baseGroup("g1")
			g2["mode"] = "in-place"
			g2["material_expiration"] = "30d"
			addGroup(doc, g2)
		}, check: func(t *testing.T, c *Config) {
			a, b := c.Groups[0], c.Groups[1]
			if a.RotationCap != 0 || a.PreviousKey != PreviousDisable || a.ReimportMargin != 0 {
				t.Fatalf("alias-swap group: %+v", a)
			}
			if b.RotationCap != 20 || b.PreviousKey != "" || b.ReimportMargin.Std() != 3*24*time.Hour {
				t.Fatalf("in-place group: %+v", b)
			}
		}},
		{name: "defaults alarms overridden by empty list", mut: func(doc, g m) {
			doc["defaults"] = m{"alarms": []any{m{"name": "a", "operation": "Decrypt", "type": "threshold", "threshold": 5}}}
			g["alarms"] = []any{}
			addGroup(doc, baseGroup("g1"))
		}, check: func(t *testing.T, c *Config) {
			if len(c.Groups[0].Alarms) != 0 || len(c.Groups[1].Alarms) != 1 {
				t.Fatalf("alarms: %v / %v", c.Groups[0].Alarms, c.Groups[1].Alarms)
			}
		}},
	})
}

func TestLoadPolicyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("policies/default.json", `{"Version":"2012-10-17","Statement":[]}`)
	write("policies/broken.json", `{"Version":`)
	write("policies/list.json", `[]`)
	write("policies/nostatement.json", `{"Version":"2012-10-17"}`)
	write("policies/huge.json", `{"Statement":[],"x":"`+strings.Repeat("a", 33000)+`"}`)
	abs := filepath.Join(dir, "policies/default.json")
	cases := []struct {
		name, policy, frag string
	}{
		{name: "relative to the file", policy: "policies/default.json"},
		{name: "absolute", policy: abs},
		{name: "missing", policy: "policies/none.json", frag: "does not exist"},
		{name: "not JSON", policy: "policies/broken.json", frag: "not a JSON object"},
		{name: "JSON list", policy: "policies/list.json", frag: "not a JSON object"},
		{name: "no Statement", policy: "policies/nostatement.json", frag: "no Statement"},
		{name: "over 32 KB", policy: "policies/huge.json", frag: "at most 32768"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The config lives in conf/; relative policy paths are resolved from there.
			policy := tc.policy
			if !filepath.IsAbs(policy) {
				policy = "../" + policy
			}
			doc := baseDoc(t)
			group0(doc)["policy_file"] = policy
			name := "conf/" + strings.ReplaceAll(tc.name, " ", "-") + ".yaml"
			write(name, string(marshalDoc(t, doc)))
			path := filepath.Join(dir, name)
			cfg, err := Load(path)
			if tc.frag != "" {
				requireProblem(t, err, "groups[0].policy_file", tc.frag)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := cfg.Groups[0]
			if g.PolicyPath != abs || !strings.Contains(string(g.Policy), "2012-10-17") {
				t.Fatalf("policy path %q, policy %q", g.PolicyPath, g.Policy)
			}
		})
	}
}
