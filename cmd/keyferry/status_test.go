package main

import "testing"

func TestStatus(t *testing.T) {
	var v statusView
	kfJSON(t, env(), 0, &v, "status", "--json")
	if len(v.Agents) != 1 || v.Agents[0].AgentID != "sandbox-agent-1" || !v.Agents[0].Verified || v.Agents[0].LastSeen.IsZero() {
		t.Fatalf("agents: %+v", v.Agents)
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
