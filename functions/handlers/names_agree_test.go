package handlers_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	agentconfig "github.com/keyferry/keyferry/agent/config"
	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/shared/protocol"
)

// TestNamesAgreeAcrossAgentAndControlPlane: an agent whose configuration
// validates (pool name, agent id) is one the control plane can register in
// its key-group file and lets in at $connect, and an agent the control
// plane would refuse for its names is refused by its own configuration
// first, with a message naming hsm_pool or agent_id. The pool default is the
// token label, so a label such as "Payments HSM" must not pass on one side
// only.
func TestNamesAgreeAcrossAgentAndControlPlane(t *testing.T) {
	cases := []struct{ pool, agent string }{
		{"p1", "agent-1"},
		{"payments-hsm", "Agent.7_b"},
		{"Payments HSM", "agent-1"},
		{"payments_hsm", "agent-1"},
		{"P1", "agent-1"},
		{"p1", "agent 1"},
		{"p1", "-agent"},
	}
	signer, err := protocol.GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: signer.PublicKeyDER()})
	for _, tc := range cases {
		t.Run(tc.pool+"/"+tc.agent, func(t *testing.T) {
			agentOK := agentAccepts(t, tc.pool, tc.agent)
			cpOK := controlPlaneAccepts(t, tc.pool, tc.agent, string(pemKey))
			if agentOK != cpOK {
				t.Fatalf("pool %q agent %q: agent config accepts = %v, control plane accepts = %v", tc.pool, tc.agent, agentOK, cpOK)
			}
		})
	}
}

// agentAccepts reports whether the agent's configuration validates with
// hsm_pool defaulted from the token label pool and agent id agent.
func agentAccepts(t *testing.T, pool, agent string) bool {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for _, n := range []string{"module.so", "pin", "cp.pem"} {
		files[n] = filepath.Join(dir, n)
		if err := os.WriteFile(files[n], []byte("1234\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	y := fmt.Sprintf(`agent_id: %q
endpoint: https://abc.execute-api.eu-west-1.amazonaws.com/prod
region: eu-west-1
state_dir: %s
hsm: {module: %s, token_label: %q, pin_file: %s, pool_size: 2}
control_plane: {public_key_file: %s}
policy:
  accounts: ["111122223333"]
  regions: [eu-west-1]
  groups: [g1]
  key_specs: [SYMMETRIC_DEFAULT]
audit: {path: %s}
`, agent, dir, files["module.so"], pool, files["pin"], files["cp.pem"], filepath.Join(dir, "audit.jsonl"))
	c, err := agentconfig.Parse([]byte(y))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if c.HSMPool != pool {
		t.Fatalf("hsm_pool defaulted to %q, want the token label %q", c.HSMPool, pool)
	}
	return c.Validate() == nil
}

// controlPlaneAccepts reports whether a key-group file can register agent
// in pool and $connect then lets it in.
func controlPlaneAccepts(t *testing.T, pool, agent, pemKey string) bool {
	t.Helper()
	cfg, err := loadGroups(t, pool, agent, pemKey, "")
	if err != nil {
		t.Logf("key-group file refuses it: %v", err)
		return false
	}
	f := newDeps(t)
	d := &handlers.Deps{Engine: &engine.Engine{Store: f.st, Groups: cfg}, Store: f.st, Now: f.d.Now}
	resp, err := d.Connect(context.Background(), wsReq("$connect", "c-names", "", map[string]string{handlers.HeaderAgentID: agent, handlers.HeaderPool: pool}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode == http.StatusOK
}
