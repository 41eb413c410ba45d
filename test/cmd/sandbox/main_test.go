package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/keyferry/keyferry/test/sandbox"
)

// TestOnceJSONShowsThePoolsAgents runs `make sandbox ARGS="--once --json"`
// (in this process): the sandbox pool's two agents are listed connected,
// every group's job names the agent that wrapped it, and the agents'
// counts add up to the jobs. The spread (fewest outstanding, ties at
// random) gives each agent some of the 7 parallel jobs.
func TestOnceJSONShowsThePoolsAgents(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--once", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var sum sandbox.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("--json: %v: %s", err, stdout.String())
	}
	ids := []string{sandbox.AgentID, sandbox.PoolAgentID(2)}
	if len(sum.Agents) != 2 {
		t.Fatalf("agents %+v, want %v", sum.Agents, ids)
	}
	wrapped := 0
	for i, a := range sum.Agents {
		if a.ID != ids[i] || a.Pool != sandbox.Pool || !a.Connected || a.Draining {
			t.Errorf("agent %+v: want %s connected in pool %s", a, ids[i], sandbox.Pool)
		}
		if a.JobsWrapped == 0 {
			t.Errorf("agent %s wrapped none of the %d jobs", a.ID, len(sum.Groups))
		}
		wrapped += a.JobsWrapped
	}
	for _, g := range sum.Groups {
		if !g.Verified || !slices.Contains(ids, g.LastJobAgent) {
			t.Errorf("group %s: job %s %s by agent %q, verified %v", g.Name, g.LastJobID, g.LastJobState, g.LastJobAgent, g.Verified)
		}
	}
	if wrapped != len(sum.Groups) {
		t.Errorf("agents wrapped %d jobs, %d groups rotated", wrapped, len(sum.Groups))
	}
}

// TestAgentsFlagRefusesAnEmptyPool: --agents 0 is refused before anything starts.
func TestAgentsFlagRefusesAnEmptyPool(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--once", "--agents", "0"}, &stdout, &stderr); code != 2 || !bytes.Contains(stderr.Bytes(), []byte("--agents 0")) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
