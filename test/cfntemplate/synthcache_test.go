package cfntemplate

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

// TestSynthCacheAnswersAnUnchangedSynth: a second synth of the same inputs
// is answered from the cache (the app does not run: it would have staged
// the groups file beside the bootstraps again) with the same template; a
// change the normalizer maps away is a hit whose staged groups file is the
// new one; any other change is a miss.
func TestSynthCacheAnswersAnUnchangedSynth(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := t.TempDir()
	assets := filepath.Join(dir, "assets")
	fns, _ := filepath.Glob(filepath.Join(root, "functions/cmd/*"))
	for _, f := range fns {
		d := filepath.Join(assets, filepath.Base(f))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "bootstrap"), []byte("#!/bin/sh\n# "+filepath.Base(f)+"\n"), 0o755)
	}
	if err := os.CopyFS(filepath.Join(dir, "groups"), os.DirFS(filepath.Join(root, "examples"))); err != nil {
		t.Fatal(err)
	}
	groups := filepath.Join(dir, "groups", "key-groups.yaml")
	cache := filepath.Join(dir, "cache")
	stripComments := func(b []byte) []byte {
		var keep [][]byte
		for _, l := range bytes.Split(b, []byte("\n")) {
			if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
				keep = append(keep, l)
			}
		}
		return bytes.Join(keep, []byte("\n"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	synth := func(name string, norm func([]byte) []byte) (*Template, string) {
		t.Helper()
		o := filepath.Join(dir, name)
		tpl, err := Synth(ctx, SynthOptions{ModuleRoot: root, GroupsFile: groups, LambdaAssets: assets, OutDir: o, CacheDir: cache, CacheNormalize: norm})
		if err != nil {
			t.Fatal(err)
		}
		return tpl, o
	}
	// ran reports whether the app ran since the last call (it stages the
	// groups file beside every bootstrap), and clears the evidence.
	staged := filepath.Join(assets, "rotate", stagedGroupsName)
	ran := func() bool {
		_, err := os.Stat(staged)
		for _, f := range fns {
			os.Remove(filepath.Join(assets, filepath.Base(f), stagedGroupsName))
		}
		return err == nil
	}
	entries := func() int {
		e, _ := filepath.Glob(filepath.Join(cache, "[0-9a-f]*"))
		return len(e)
	}

	first, _ := synth("out1", stripComments)
	if r, n := ran(), entries(); !r || n != 1 {
		t.Fatalf("first synth: app ran %v, cache entries %d; want a run and one entry", r, n)
	}
	second, _ := synth("out2", stripComments)
	if ran() {
		t.Fatal("an unchanged synth ran the app again")
	}
	a, _ := json.Marshal(first.Resources)
	b, _ := json.Marshal(second.Resources)
	if !bytes.Equal(a, b) {
		t.Fatal("the cached template differs from the synthesized one")
	}

	// A comment the normalizer drops: a hit, restaged with the new bytes.
	orig, _ := os.ReadFile(groups)
	changed := append([]byte("# a comment the template never sees\n"), orig...)
	os.WriteFile(groups, changed, 0o644)
	third, _ := synth("out3", stripComments)
	if ran() {
		t.Fatal("a change the normalizer maps away ran the app")
	}
	fns3, err := third.Functions()
	if err != nil || len(fns3) == 0 {
		t.Fatalf("functions of the cached template: %v", err)
	}
	for _, f := range fns3 {
		got, err := os.ReadFile(filepath.Join(f.AssetDir, stagedGroupsName))
		if err != nil || !bytes.Equal(got, changed) {
			t.Fatalf("%s: staged groups file not the real one after a hit (%v)", f.LogicalID, err)
		}
	}
	// The cache's own copy was not written through by the restage.
	c, _ := filepath.Glob(filepath.Join(cache, "[0-9a-f]*", "asset.*", stagedGroupsName))
	for _, p := range c {
		if got, _ := os.ReadFile(p); bytes.Equal(got, changed) {
			t.Fatalf("restage wrote through the cache's hard link %s", p)
		}
	}

	// Without the normalizer the comment is a change: a miss.
	synth("out4", nil)
	if r, n := ran(), entries(); !r || n != 2 {
		t.Fatalf("changed inputs: app ran %v, cache entries %d; want a run and two entries", r, n)
	}
}
