package groups

import (
	"reflect"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func TestConfigHelpers(t *testing.T) {
	doc := baseDoc(t)
	g1 := baseGroup("g1")
	g1["region"] = "eu-west-1"
	g1["key_spec"] = "ECC_NIST_P256"
	g1["material_expiration"] = "30d"
	g1["tags"] = m{"team": "id"}
	g2 := baseGroup("g2")
	g2["account"] = "000011112222"
	doc["groups"] = append(doc["groups"].([]any), g1, g2, baseGroup("g3"))
	cfg, err := Parse(marshalDoc(t, doc))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Group", func(t *testing.T) {
		g, ok := cfg.Group("g1")
		if !ok || g.Name != "g1" || g != &cfg.Groups[1] {
			t.Fatalf("Group(g1) = %v, %v", g, ok)
		}
		if _, ok := cfg.Group("nope"); ok {
			t.Fatal("Group(nope) found something")
		}
	})
	t.Run("Pool", func(t *testing.T) {
		if p, ok := cfg.Pool("pool-a"); !ok || len(p.Agents) != 1 {
			t.Fatalf("Pool(pool-a) = %v, %v", p, ok)
		}
		if _, ok := cfg.Pool("pool-z"); ok {
			t.Fatal("Pool(pool-z) found something")
		}
	})
	t.Run("Targets", func(t *testing.T) {
		want := []Target{{"000011112222", "us-east-1"}, {"111122223333", "eu-west-1"}, {"111122223333", "us-east-1"}}
		if got := cfg.Targets(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Targets() = %v, want %v", got, want)
		}
	})
	t.Run("Tags", func(t *testing.T) {
		g, _ := cfg.Group("g1")
		want := map[string]string{"team": "id", GroupTagKey: "g1"}
		if got := g.Tags(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Tags() = %v", got)
		}
		g.Tags()["team"] = "changed"
		if g.UserTags["team"] != "id" {
			t.Fatal("Tags() aliases the group's map")
		}
		g0, _ := cfg.Group("g0")
		if got := g0.Tags(); !reflect.DeepEqual(got, map[string]string{GroupTagKey: "g0"}) {
			t.Fatalf("Tags() without user tags = %v", got)
		}
	})
	t.Run("Expiration and Info", func(t *testing.T) {
		cases := []struct {
			group   string
			expires bool
			valid   time.Duration
			family  keyspec.Family
		}{
			{"g0", false, 0, keyspec.FamilySymmetric},
			{"g1", true, 30 * 24 * time.Hour, keyspec.FamilyECC},
		}
		for _, tc := range cases {
			g, _ := cfg.Group(tc.group)
			if g.MaterialExpires() != tc.expires || g.ValidFor() != tc.valid || g.Info().Family != tc.family {
				t.Fatalf("%s: expires %v valid %v family %v", tc.group, g.MaterialExpires(), g.ValidFor(), g.Info().Family)
			}
		}
	})
}

func TestModes(t *testing.T) {
	cases := []struct {
		mode           Mode
		cap, createsKs bool
	}{
		{ModeAliasSwap, false, true},
		{ModeInPlace, true, false},
		{ModeHybrid, true, true},
	}
	for _, tc := range cases {
		if tc.mode.UsesRotationCap() != tc.cap || tc.mode.CreatesKeys() != tc.createsKs {
			t.Fatalf("%s: cap %v creates %v", tc.mode, tc.mode.UsesRotationCap(), tc.mode.CreatesKeys())
		}
	}
}
