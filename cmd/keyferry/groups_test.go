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
	if !ok.Valid || ok.Groups != 8 || len(ok.Problems) != 0 {
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

// TestGroupsValidateDeployed: the sample with a replica added to
// payments-data (in place, its key made single-Region by the sandbox's
// first rotation) is valid on its own, and with --deployed is refused at
// groups[0].replicas saying the key is single-Region and what to do.
func TestGroupsValidateDeployed(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../test/sandbox/groups.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol, _ := os.ReadFile("../../test/sandbox/policies/default.json")
	os.MkdirAll(filepath.Join(dir, "policies"), 0o700)
	os.WriteFile(filepath.Join(dir, "policies", "default.json"), pol, 0o600)
	doc := strings.Replace(string(src), "    mode: in-place\n", "    mode: in-place\n    replicas: [eu-west-1]\n", 1)
	file := filepath.Join(dir, "key-groups.yaml")
	os.WriteFile(file, []byte(doc), 0o600)

	var offline validateView
	kfJSON(t, env(), 0, &offline, "groups", "validate", file, "--json")
	if !offline.Valid {
		t.Fatalf("without --deployed: %+v", offline)
	}
	var v validateView
	kfJSON(t, env(), 1, &v, "groups", "validate", file, "--deployed", "--json")
	if v.Valid || len(v.Problems) != 1 || v.Problems[0].Path != "groups[0].replicas" ||
		!strings.Contains(v.Problems[0].Message, "single-Region") || !strings.Contains(v.Problems[0].Message, "mode: alias-swap") {
		t.Fatalf("with --deployed: %+v", v)
	}
}
