package lambdarun

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// ConfigFromTemplate reads a function's timeout, memory, reserved
// concurrency, role and environment (intrinsics resolved by r) from the
// synthesized template. bootstrapDir, when set, holds <short name>/bootstrap
// (a local build of the same code) used instead of the template asset's
// bootstrap; the task directory stays the asset's (its bundled groups
// file and policies). override entries replace or add variables.
func ConfigFromTemplate(t *cfntemplate.Template, name string, r *cfntemplate.Resolver, bootstrapDir string, override map[string]string) (FunctionConfig, error) {
	f, err := t.Function(name)
	if err != nil {
		return FunctionConfig{}, err
	}
	env, err := f.ResolveEnvironment(r)
	if err != nil {
		return FunctionConfig{}, err
	}
	maps.Copy(env, override)
	fnName := f.Name
	if fnName == "" {
		fnName = f.LogicalID
	}
	cfg := FunctionConfig{Name: fnName, RoleLogicalID: f.RoleLogicalID, TaskDir: f.AssetDir, Timeout: f.Timeout,
		MemoryMB: f.MemoryMB, Concurrency: f.ReservedConcurrency, Env: env}
	if cfg.TaskDir == "" {
		return FunctionConfig{}, fmt.Errorf("lambdarun: function %q: no code asset in template %s", name, t.Path)
	}
	cfg.Bootstrap = filepath.Join(cfg.TaskDir, "bootstrap")
	if bootstrapDir != "" {
		short := fnName
		if len(short) > len("keyferry-") && short[:len("keyferry-")] == "keyferry-" {
			short = short[len("keyferry-"):]
		}
		cfg.Bootstrap = filepath.Join(bootstrapDir, short, "bootstrap")
	}
	if _, err := os.Stat(cfg.Bootstrap); err != nil {
		return FunctionConfig{}, fmt.Errorf("lambdarun: function %q: %w", fnName, err)
	}
	return cfg, nil
}
