package bench

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/keyferry/keyferry/shared/groups"
)

// GroupSet is a run of generated SYMMETRIC_DEFAULT groups named
// <Prefix>-<mode>-<i>, each with its own alias.
type GroupSet struct {
	Prefix string
	// InPlace and AliasSwap are how many groups of each mode.
	InPlace, AliasSwap int
	// WrappingKeySpec pins the import wrapping key size ("" = auto, which
	// picks RSA_4096).
	WrappingKeySpec string
}

// Names lists the set's group names, in-place first.
func (s GroupSet) Names() (inPlace, aliasSwap []string) {
	for i := 1; i <= s.InPlace; i++ {
		inPlace = append(inPlace, fmt.Sprintf("%s-inplace-%03d", s.Prefix, i))
	}
	for i := 1; i <= s.AliasSwap; i++ {
		aliasSwap = append(aliasSwap, fmt.Sprintf("%s-swap-%03d", s.Prefix, i))
	}
	return inPlace, aliasSwap
}

// WriteGroupsFile writes a key-groups file with every set (copies of the
// sandbox's SYMMETRIC_DEFAULT groups with distinct names and aliases) into
// dir, with the key policy policyJSON beside it, and returns its path. The
// file is validated with shared/groups before it is returned.
func WriteGroupsFile(dir string, policyJSON []byte, sets ...GroupSet) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "policies", "default.json"), policyJSON, 0o600); err != nil {
		return "", err
	}
	var gs []map[string]any
	for _, s := range sets {
		inPlace, swap := s.Names()
		add := func(name, mode string) {
			g := map[string]any{
				"name": name, "key_spec": "SYMMETRIC_DEFAULT", "mode": mode,
				"schedule": "rate(1 hour)", "alias": "alias/" + name,
				"description": "benchmark group (" + mode + ")",
			}
			if mode == "in-place" {
				g["rotation_cap"] = 10
			}
			if s.WrappingKeySpec != "" {
				g["wrapping"] = map[string]any{"algorithm": "RSAES_OAEP_SHA_1", "key_spec": s.WrappingKeySpec}
			}
			gs = append(gs, g)
		}
		for _, n := range inPlace {
			add(n, "in-place")
		}
		for _, n := range swap {
			add(n, "alias-swap")
		}
	}
	doc := map[string]any{
		"version":       1,
		"control_plane": map[string]any{"signing_key_alias": "alias/keyferry-control-plane"},
		"hsm_pools":     []any{map[string]any{"name": "sandbox", "agents": []any{map[string]any{"id": "sandbox-agent-1"}}}},
		"defaults": map[string]any{
			"account": "111122223333", "region": "us-east-1", "hsm_pool": "sandbox",
			"policy_file": "policies/default.json", "tags": map[string]string{"env": "bench"},
		},
		"groups": gs,
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "key-groups.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", err
	}
	if _, err := groups.Load(path); err != nil {
		return "", fmt.Errorf("bench: generated groups file does not validate: %w", err)
	}
	return path, nil
}
