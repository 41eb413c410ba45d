package cfntemplate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// SynthOptions says what to synthesize.
type SynthOptions struct {
	// ModuleRoot is the keyferry module (the folder of go.mod and cdk.json).
	ModuleRoot string
	// GroupsFile is the key-groups file (context keyferry:groupsFile).
	GroupsFile string
	// LambdaAssets holds <function>/bootstrap (context keyferry:lambdaAssets).
	LambdaAssets string
	// OutDir receives the cloud assembly (as `cdk synth -o`).
	OutDir string
	// CacheDir, when set, keeps assemblies by the hash of their inputs
	// (synthcache.go) and answers an unchanged synth from there.
	CacheDir string
	// CacheNormalize maps the groups file's bytes to what the cache key is
	// computed from (nil: the bytes as they are).
	CacheNormalize func([]byte) []byte
}

// Synth runs the CDK app the way `cdk synth` does (`go run ./infra` with
// CDK_OUTDIR and CDK_CONTEXT_JSON; no node CLI, no network) and loads the
// one stack it writes.
func Synth(ctx context.Context, o SynthOptions) (*Template, error) {
	for _, p := range []*string{&o.GroupsFile, &o.LambdaAssets, &o.OutDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("cfntemplate: synth: %w", err)
		}
		*p = abs
	}
	if _, err := os.Stat(o.GroupsFile); err != nil {
		return nil, fmt.Errorf("cfntemplate: synth: groups file: %w", err)
	}
	// The asset and path metadata are what the cdk CLI asks for too: the
	// sandbox finds each function's code by aws:asset:path.
	cctx, err := json.Marshal(map[string]any{"keyferry:groupsFile": o.GroupsFile, "keyferry:lambdaAssets": o.LambdaAssets,
		"aws:cdk:enable-asset-metadata": true, "aws:cdk:enable-path-metadata": true})
	if err != nil {
		return nil, err
	}
	var key string
	if o.CacheDir != "" {
		if key, err = synthKey(ctx, o); err != nil {
			return nil, fmt.Errorf("cfntemplate: synth cache key: %w", err)
		}
		hit, err := fromCache(o, key)
		if err != nil {
			return nil, fmt.Errorf("cfntemplate: synth cache %s: %w", o.CacheDir, err)
		}
		if hit {
			return LoadStack(o.OutDir, "")
		}
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("cfntemplate: synth: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./infra")
	cmd.Dir = o.ModuleRoot
	cmd.Env = append(os.Environ(), "CDK_OUTDIR="+o.OutDir, "CDK_CONTEXT_JSON="+string(cctx), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cfntemplate: synth %s: %w: %s", o.GroupsFile, err, out)
	}
	t, err := LoadStack(o.OutDir, "")
	if err == nil && key != "" {
		if err := toCache(o, key); err != nil {
			return nil, fmt.Errorf("cfntemplate: synth cache %s: %w", o.CacheDir, err)
		}
	}
	return t, err
}
