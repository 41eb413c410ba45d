package groups

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestValidateReplicas(t *testing.T) {
	runValidateCases(t, []validateCase{
		{name: "one replica", mut: func(doc, g m) { g["replicas"] = []any{"eu-west-1"} }, check: func(t *testing.T, c *Config) {
			g := c.Groups[0]
			if !g.MultiRegion() || !slices.Equal(g.Regions(), []string{"us-east-1", "eu-west-1"}) {
				t.Fatalf("regions %v", g.Regions())
			}
		}},
		{name: "no replicas is single-Region", mut: func(doc, g m) { g["replicas"] = []any{} }, check: func(t *testing.T, c *Config) {
			if c.Groups[0].MultiRegion() || c.Groups[0].Replicas != nil {
				t.Fatalf("replicas %v", c.Groups[0].Replicas)
			}
		}},
		{name: "replica in the primary's region", mut: func(doc, g m) { g["replicas"] = []any{"us-east-1"} },
			path: "groups[0].replicas[0]", frag: "the group's own region"},
		{name: "duplicate replica", mut: func(doc, g m) { g["replicas"] = []any{"eu-west-1", "eu-west-1"} },
			path: "groups[0].replicas[1]", frag: "listed twice"},
		{name: "unknown region", mut: func(doc, g m) { g["replicas"] = []any{"eu-west-9"} },
			path: "groups[0].replicas[0]", frag: "not a Region KMS is offered in"},
		{name: "other partition", mut: func(doc, g m) { g["replicas"] = []any{"cn-north-1"} },
			path: "groups[0].replicas[0]", frag: "within one partition"},
		{name: "asymmetric multi-Region", mut: func(doc, g m) {
			g["key_spec"], g["key_usage"], g["replicas"] = "ECC_NIST_P256", "SIGN_VERIFY", []any{"eu-west-1"}
		}},
		{name: "in-place across regions", mut: func(doc, g m) { g["replicas"], g["mode"] = []any{"eu-west-1"}, "in-place" }, check: func(t *testing.T, c *Config) {
			if !c.Groups[0].MultiRegion() || c.Groups[0].Mode != ModeInPlace {
				t.Fatalf("group %+v", c.Groups[0])
			}
		}},
		{name: "from defaults", mut: func(doc, g m) { doc["defaults"] = m{"replicas": []any{"us-east-1"}} },
			path: "groups[0].replicas[0]", frag: "(value from defaults)"},
	})
}

func TestCheckReplicasAgainstKeys(t *testing.T) {
	parse := func(mode string) *Config {
		doc := baseDoc(t)
		g := group0(doc)
		g["replicas"] = []any{"eu-west-1"}
		cfg, err := Parse(marshalDoc(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		// The mode under test (the sample group's is alias-swap).
		cfg.Groups[0].Mode = Mode(mode)
		return cfg
	}
	single := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	multi := "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
	for _, tc := range []struct {
		mode, arn string
		has       bool
		wantFrag  string
	}{
		{"in-place", single, true, "single-Region and KMS cannot add replicas"},
		{"in-place", multi, true, ""},
		{"in-place", "", false, ""},
		{"alias-swap", single, true, ""},
	} {
		err := CheckReplicasAgainstKeys(parse(tc.mode), func(string) (string, bool) { return tc.arn, tc.has })
		if tc.wantFrag == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tc.mode, tc.arn, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Problems[0].Path != "groups[0].replicas" || !strings.Contains(err.Error(), tc.wantFrag) ||
			!strings.Contains(err.Error(), "mode: alias-swap") {
			t.Errorf("%s %s: %v", tc.mode, tc.arn, err)
		}
	}
	if !MultiRegionKey(multi) || MultiRegionKey(single) {
		t.Fatal("MultiRegionKey")
	}
}
