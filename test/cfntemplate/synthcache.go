package cfntemplate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// A synthesized cloud assembly depends only on the CDK app's sources, the
// module's dependencies, the key-groups file (and the policy files beside
// it) and the bootstraps it stages; CDK's run is deterministic. Synthesis
// costs a jsii node runtime loading aws-cdk-lib (about 15 s of CPU), so
// Synth with SynthOptions.CacheDir keeps each assembly under the sha256 of
// those inputs and copies it out when they have not changed.
//
// The groups file may carry values that change on every run and that the
// template does not contain (the sandbox's agent identity key, made fresh
// on its token each start): CacheNormalize maps the file's bytes to what
// the key is computed from. On a hit every staged copy of the groups file
// and its policy files in the assembly is rewritten from the real ones, so
// the functions read exactly the file they would have read after a fresh
// synth; only the asset folders' names (content hashes) are the cached
// run's, and nothing reads them as hashes.

// stagedGroupsName is the name the stack stages the groups file under
// beside every bootstrap (infra/stack.GroupsFileName; that package is the
// CDK app itself, too heavy to import here).
const stagedGroupsName = "key-groups.yaml"

// keepCached is how many assemblies the cache keeps (newest first).
const keepCached = 8

// synthKey is the cache key of o's inputs.
func synthKey(ctx context.Context, o SynthOptions) (string, error) {
	h := sha256.New()
	add := func(name string, data []byte) {
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	groups, err := os.ReadFile(o.GroupsFile)
	if err != nil {
		return "", err
	}
	if o.CacheNormalize != nil {
		groups = o.CacheNormalize(groups)
	}
	add("groups", groups)
	// The policy files beside the groups file (what the stack stages).
	gdir := filepath.Dir(o.GroupsFile)
	err = filepath.WalkDir(gdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == o.GroupsFile || filepath.Ext(p) != ".json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil {
			rel, _ := filepath.Rel(gdir, p)
			add("policy:"+rel, b)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	// The bootstraps (staged as assets).
	boots, _ := filepath.Glob(filepath.Join(o.LambdaAssets, "*", "bootstrap"))
	sort.Strings(boots)
	for _, b := range boots {
		sum, err := fileSum(b)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(o.LambdaAssets, b)
		add("bootstrap:"+rel, sum)
	}
	// The app's own sources: every file of every package of this module
	// that ./infra imports, and the module's dependency versions.
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, "./infra")
	cmd.Dir = o.ModuleRoot
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list ./infra: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		for _, name := range f[1:] {
			b, err := os.ReadFile(filepath.Join(f[0], name))
			if err != nil {
				return "", err
			}
			rel, _ := filepath.Rel(o.ModuleRoot, filepath.Join(f[0], name))
			add("src:"+rel, b)
		}
	}
	for _, name := range []string{"go.mod", "go.sum", "cdk.json"} {
		b, err := os.ReadFile(filepath.Join(o.ModuleRoot, name))
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		add(name, b)
	}
	add("context", []byte(o.LambdaAssets))
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

func fileSum(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// copyTree copies src into dst (created), hard-linking files where it can
// (the staged bootstraps are megabytes each) and copying otherwise.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if os.Link(p, to) == nil {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, info.Mode().Perm())
	})
}

// restage rewrites every staged copy of the groups file in the assembly at
// dir (and the policy files staged beside it) from the real files, as a
// fresh synth would have staged them. A staged file is replaced, never
// written through: the cache's hard links stay as they were.
func restage(dir, groupsFile string) error {
	data, err := os.ReadFile(groupsFile)
	if err != nil {
		return err
	}
	gdir := filepath.Dir(groupsFile)
	staged, _ := filepath.Glob(filepath.Join(dir, "asset.*", "*"))
	for _, p := range staged {
		if filepath.Base(p) != stagedGroupsName {
			continue
		}
		asset := filepath.Dir(p)
		if err := replaceFile(p, data); err != nil {
			return err
		}
		err := filepath.WalkDir(gdir, func(q string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(q) != ".json" {
				return err
			}
			rel, _ := filepath.Rel(gdir, q)
			dst := filepath.Join(asset, rel)
			if _, err := os.Stat(dst); err != nil {
				return nil // not staged (no group names it)
			}
			b, err := os.ReadFile(q)
			if err != nil {
				return err
			}
			return replaceFile(dst, b)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func replaceFile(p string, data []byte) error {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}

// fromCache copies the cached assembly for key into o.OutDir and restages
// the groups file; false when the cache has none.
func fromCache(o SynthOptions, key string) (bool, error) {
	src := filepath.Join(o.CacheDir, key)
	if _, err := os.Stat(filepath.Join(src, "manifest.json")); err != nil {
		return false, nil
	}
	now := time.Now()
	os.Chtimes(src, now, now) // most recently used
	if err := os.RemoveAll(o.OutDir); err != nil {
		return false, err
	}
	if err := copyTree(src, o.OutDir); err != nil {
		return false, err
	}
	return true, restage(o.OutDir, o.GroupsFile)
}

// toCache keeps the assembly just synthesized in o.OutDir under key
// (written aside and renamed, so a concurrent reader sees all or nothing),
// then drops the least recently used beyond keepCached.
func toCache(o SynthOptions, key string) error {
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(o.CacheDir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(o.OutDir, filepath.Join(tmp, "a")); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(tmp, "a"), filepath.Join(o.CacheDir, key)); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(filepath.Join(o.CacheDir, key, "manifest.json")); serr != nil {
			return err
		}
	}
	entries, err := os.ReadDir(o.CacheDir)
	if err != nil {
		return err
	}
	type aged struct {
		name string
		mod  time.Time
	}
	var all []aged
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			all = append(all, aged{e.Name(), info.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod.After(all[j].mod) })
	for _, a := range all[min(len(all), keepCached):] {
		os.RemoveAll(filepath.Join(o.CacheDir, a.name))
	}
	return nil
}
