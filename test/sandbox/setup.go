package sandbox

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"gopkg.in/yaml.v3"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/shared/groups"
)

// createSigningKey creates the control plane's ECC_NIST_P256 signing key
// (as the CDK stack does) and returns its public key as PEM.
func (s *Sandbox) createSigningKey(ctx context.Context) ([]byte, error) {
	s.KMS = kms.NewFromConfig(aws.Config{Region: Region, Credentials: staticCreds(), BaseEndpoint: aws.String(s.Endpoints.KMS)})
	out, err := s.KMS.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify,
		Description: aws.String("keyferry control plane: signs wrap_requests"),
	})
	if err != nil {
		return nil, fmt.Errorf("sandbox: create signing key: %w", err)
	}
	s.signingKeyARN = aws.ToString(out.KeyMetadata.Arn)
	if _, err := s.KMS.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(SigningKeyAlias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		return nil, fmt.Errorf("sandbox: signing key alias: %w", err)
	}
	pub, err := s.KMS.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: out.KeyMetadata.KeyId})
	if err != nil {
		return nil, fmt.Errorf("sandbox: signing public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub.PublicKey}), nil
}

// writeAgentConfig writes the agent's YAML config (the same format an
// operator writes on premises) and returns its path.
func (s *Sandbox) writeAgentConfig(h hsm.Config, controlPlanePEM []byte) (string, error) {
	dir := filepath.Join(s.Dir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	pubFile := filepath.Join(dir, "control-plane.pem")
	if err := os.WriteFile(pubFile, controlPlanePEM, 0o600); err != nil {
		return "", err
	}
	hb := s.Heartbeat
	if hb <= 0 {
		hb = 30 * time.Second
	}
	cfg := map[string]any{
		"agent_id":  AgentID,
		"hsm_pool":  Pool,
		"endpoint":  s.Endpoints.WebSocket,
		"region":    Region,
		"state_dir": dir,
		"log_level": "info",
		"hsm": map[string]any{
			"module": h.Module, "token_label": h.TokenLabel, "pin_file": h.PINFile,
			"pool_size": 4, "identity_label": "kf-agent-identity", "init_args": h.InitArgs,
		},
		"control_plane": map[string]any{"public_key_file": pubFile, "clock_skew": "2m"},
		"policy": map[string]any{
			"accounts": []string{Account}, "regions": s.agentRegions(),
			"min_wrapping_key_bits": 2048,
			"global_rate":           map[string]any{"per_minute": 6000, "burst": 100},
			"group_rate":            map[string]any{"per_minute": 600, "burst": 20},
		},
		"tunnel":  map[string]any{"heartbeat_interval": hb.String(), "backoff_initial": "200ms", "backoff_max": "5s"},
		"audit":   map[string]any{"path": filepath.Join(dir, "audit.jsonl"), "sign": true},
		"metrics": map[string]any{"listen": "127.0.0.1:0"},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	s.hsmConfig = filepath.Join(dir, "agent.yaml")
	return s.hsmConfig, os.WriteFile(s.hsmConfig, b, 0o600)
}

// agentEnv is the agent process's environment: its own IAM identity for the
// SigV4 presign, and the SoftHSM configuration (NSS needs none: its
// database is named in the agent config's hsm.init_args).
func (s *Sandbox) agentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k := kv[:strings.IndexByte(kv, '=')]
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "KEYFERRY_") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env,
		"AWS_ACCESS_KEY_ID="+AgentAccessKey,
		"AWS_SECRET_ACCESS_KEY="+AgentSecretKey,
		"AWS_REGION="+Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+filepath.Join(s.Dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "aws-credentials"),
		"SOFTHSM2_CONF="+os.Getenv("SOFTHSM2_CONF"),
	), s.AgentEnv...)
}

// agentIdentity runs `keyferry-agent identity` and returns the PEM public key.
func (s *Sandbox) agentIdentity(ctx context.Context, cfg string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.AgentBinary, "identity", "--config", cfg)
	cmd.Env = s.agentEnv()
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("sandbox: keyferry-agent identity: %v: %s", err, stderr)
	}
	if b, _ := pem.Decode(out); b == nil || b.Type != "PUBLIC KEY" {
		return "", fmt.Errorf("sandbox: keyferry-agent identity printed no PEM public key: %q", out)
	}
	return string(out), nil
}

// writeGroups writes the key-groups file with the agents' identities
// registered in its pool, and the policy files beside it.
func (s *Sandbox) writeGroups(agents []groups.Agent) (string, error) {
	src := defaultGroups
	policyDir := ""
	if s.GroupsFile != "" {
		b, err := os.ReadFile(s.GroupsFile)
		if err != nil {
			return "", err
		}
		src = b
		policyDir = filepath.Dir(s.GroupsFile)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return "", fmt.Errorf("sandbox: groups file: %w", err)
	}
	entries := []any{}
	ours := map[any]bool{}
	for _, a := range agents {
		entries = append(entries, map[string]any{"id": a.ID, "public_key": a.PublicKey})
		ours[a.ID] = true
	}
	pools, _ := doc["hsm_pools"].([]any)
	found := false
	for _, p := range pools {
		pm, _ := p.(map[string]any)
		if pm["name"] != Pool {
			continue
		}
		listed, _ := pm["agents"].([]any)
		kept := []any{}
		for _, a := range listed {
			if am, _ := a.(map[string]any); !ours[am["id"]] {
				kept = append(kept, a)
			}
		}
		pm["agents"] = append(kept, entries...)
		found = true
	}
	if !found {
		doc["hsm_pools"] = append(pools, map[string]any{"name": Pool, "agents": entries})
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.Dir, "control-plane")
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o700); err != nil {
		return "", err
	}
	if policyDir == "" {
		if err := os.WriteFile(filepath.Join(dir, "policies", "default.json"), defaultPolicy, 0o600); err != nil {
			return "", err
		}
	} else if err := copyTree(filepath.Join(policyDir, "policies"), filepath.Join(dir, "policies")); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "key-groups.yaml")
	return path, os.WriteFile(path, out, 0o600)
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == from {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
}

// newToken creates the sandbox's token under Dir/hsm: an NSS softoken
// database (default) or a SoftHSM2 token (NewSoftHSMToken sets
// SOFTHSM2_CONF, restored by Close).
func (s *Sandbox) newToken() (hsm.Config, error) {
	if s.HSM == "" {
		s.HSM = os.Getenv("KEYFERRY_SANDBOX_HSM")
	}
	if s.HSM == "" {
		s.HSM = HSMNSS
	}
	dir := filepath.Join(s.Dir, "hsm")
	switch s.HSM {
	case HSMNSS:
		cfg, err := hsmtest.NewNSSToken(dir)
		if err != nil {
			return cfg, fmt.Errorf("sandbox: NSS token: %w", err)
		}
		return cfg, nil
	case HSMSoftHSM:
		s.setenv("SOFTHSM2_CONF", os.Getenv("SOFTHSM2_CONF"))
		cfg, err := hsmtest.NewSoftHSMToken(dir)
		if err != nil {
			return cfg, fmt.Errorf("sandbox: SoftHSM token: %w", err)
		}
		return cfg, nil
	}
	return hsm.Config{}, fmt.Errorf("sandbox: HSM %q: want %q or %q (KEYFERRY_SANDBOX_HSM)", s.HSM, HSMNSS, HSMSoftHSM)
}

// OpenHSM opens the sandbox's token in this process with the settings of
// the agent's config file (a test that reads the HSM's side by PKCS#11:
// public keys, objects). Close it before the sandbox.
func (s *Sandbox) OpenHSM(ctx context.Context) (*hsm.HSM, error) {
	cfg, err := s.TokenConfig()
	if err != nil {
		return nil, err
	}
	cfg.Logger = s.Log.With("component", "test-hsm")
	return hsm.Open(ctx, cfg)
}
