package main

import (
	"testing"

	"github.com/keyferry/keyferry/test/sandbox"
)

func TestStatus(t *testing.T) {
	var v statusView
	kfJSON(t, env(), 0, &v, "status", "--json")
	// Both agents of the sandbox pool, each connected with a verified hello.
	ids := sb.AgentIDs()
	if len(v.Agents) != len(ids) || len(ids) != 2 {
		t.Fatalf("agents: %+v, want %v", v.Agents, ids)
	}
	seen := map[string]bool{}
	for _, a := range v.Agents {
		seen[a.AgentID] = true
		if a.Pool != sandbox.Pool || !a.Connected || !a.Verified || a.Draining || a.LastSeen.IsZero() || a.Outstanding != 0 {
			t.Errorf("agent %+v: want connected in pool %s, verified, not draining, none outstanding", a, sandbox.Pool)
		}
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("agent %s of the pool not listed: %+v", id, v.Agents)
		}
	}
	if len(v.Groups) != len(sb.Groups.Groups) {
		t.Fatalf("groups: %+v", v.Groups)
	}
	for _, g := range v.Groups {
		if g.Generation < 1 || g.KeyARN == "" || g.LastJob == nil || g.NextRotation == nil {
			t.Errorf("group %s: %+v", g.Name, g)
		}
		if g.Name == "payments-data" && g.MaterialExpires == nil {
			t.Errorf("payments-data has material_expiration 30d but no expiry shown")
		}
	}
	if r := kf(t, env(), "status"); r.code != 0 || len(r.stdout) == 0 {
		t.Fatalf("table: %d %s", r.code, r.stderr)
	}
}
