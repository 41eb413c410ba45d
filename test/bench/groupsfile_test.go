package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/keyferry/keyferry/shared/groups"
)

func samplePolicy(t *testing.T) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "sandbox", "policies", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteGroupsFile(t *testing.T) {
	cases := []struct {
		name       string
		sets       []GroupSet
		wantGroups int
		wantWrap   string
	}{
		{"fleet with RSA_2048", []GroupSet{{Prefix: "fleet", InPlace: 3, AliasSwap: 2, WrappingKeySpec: "RSA_2048"}}, 5, "RSA_2048"},
		{"two sets auto wrapping", []GroupSet{{Prefix: "lat", InPlace: 1, AliasSwap: 1}, {Prefix: "cli", AliasSwap: 4}}, 6, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, err := WriteGroupsFile(t.TempDir(), samplePolicy(t), c.sets...)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := groups.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Groups) != c.wantGroups {
				t.Fatalf("%d groups, want %d", len(cfg.Groups), c.wantGroups)
			}
			aliases := map[string]bool{}
			for _, g := range cfg.Groups {
				if aliases[g.Alias] {
					t.Fatalf("alias %s used twice", g.Alias)
				}
				aliases[g.Alias] = true
				if string(g.Wrapping.KeySpec) != c.wantWrap && !(c.wantWrap == "" && (g.Wrapping.KeySpec == "" || g.Wrapping.KeySpec == "auto")) {
					t.Fatalf("group %s wrapping key spec %q, want %q", g.Name, g.Wrapping.KeySpec, c.wantWrap)
				}
			}
		})
	}
}
