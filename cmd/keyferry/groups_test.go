package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGroupsValidate(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\ngroups:\n  - name: \"x y\"\n    key_spec: FOO\n"), 0o600)
	var ok validateView
	kfJSON(t, env(), 0, &ok, "groups", "validate", "../../test/sandbox/groups.yaml", "--json")
	if !ok.Valid || ok.Groups != 5 || len(ok.Problems) != 0 {
		t.Fatalf("sample groups file: %+v", ok)
	}
	var v validateView
	kfJSON(t, env(), 1, &v, "groups", "validate", bad, "--json")
	paths := map[string]bool{}
	for _, p := range v.Problems {
		paths[p.Path] = true
	}
	for _, want := range []string{"groups[0].name", "groups[0].key_spec", "groups[0].alias"} {
		if !paths[want] {
			t.Errorf("no problem at %s in %+v", want, v.Problems)
		}
	}
	r := kf(t, env(), "groups", "validate", bad)
	if r.code != 1 || !strings.Contains(r.stdout, bad+": groups[0].key_spec:") {
		t.Fatalf("table output lacks the path:\n%s", r.stdout)
	}
	if r := kf(t, env(), "groups", "validate", filepath.Join(t.TempDir(), "missing.yaml")); r.code != 2 {
		t.Fatalf("missing file: exit %d", r.code)
	}
}

func TestGroupsList(t *testing.T) {
	var out struct {
		Groups []groupView `json:"groups"`
	}
	kfJSON(t, env(), 0, &out, "groups", "list", "--json")
	if len(out.Groups) != len(sb.Groups.Groups) || out.Groups[0].Name != sb.Groups.Groups[0].Name || out.Groups[0].HSMPool != "sandbox" {
		t.Fatalf("groups list: %+v", out.Groups)
	}
	var e errDocT
	kfJSON(t, env("KEYFERRY_GROUPS_FILE"), 2, &e, "groups", "list", "--json")
	if e.Error.Kind != "usage" || !strings.Contains(e.Error.Message, "KEYFERRY_GROUPS_FILE") {
		t.Fatalf("without a groups file: %+v", e)
	}
}
