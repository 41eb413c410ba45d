package main

import (
	"encoding/json"
	"strings"
	"testing"
)

type jobsDoc struct {
	Jobs []*jobView `json:"jobs"`
}

func TestJobs(t *testing.T) {
	var all jobsDoc
	kfJSON(t, env(), 0, &all, "jobs", "--json", "--limit", "0")
	if len(all.Jobs) < len(sb.Groups.Groups) {
		t.Fatalf("want at least one job per group, got %d", len(all.Jobs))
	}
	for i := 1; i < len(all.Jobs); i++ {
		if all.Jobs[i].CreatedAt.After(all.Jobs[i-1].CreatedAt) {
			t.Fatalf("not newest first")
		}
	}
	var one jobsDoc
	kfJSON(t, env(), 0, &one, "jobs", "--group", "webhook-mac", "--state", "succeeded", "--json")
	if len(one.Jobs) == 0 {
		t.Fatal("no SUCCEEDED webhook-mac job")
	}
	for _, j := range one.Jobs {
		if j.Group != "webhook-mac" || j.State != "SUCCEEDED" {
			t.Fatalf("filter leaked %s %s", j.Group, j.State)
		}
	}
	var e errDocT
	kfJSON(t, env(), 2, &e, "jobs", "--state", "DONE", "--json")
	kfJSON(t, env(), 3, &e, "jobs", "--group", "no-such-group", "--json")
	if e.Error.Kind != "unknown_group" {
		t.Fatalf("unknown group: %+v", e)
	}
	r := kf(t, env(), "jobs", "--watch", "--count", "2", "--interval", "10ms", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("--watch --count 2: exit %d, %d lines", r.code, len(lines))
	}
	for _, l := range lines {
		var d jobsDoc
		if err := json.Unmarshal([]byte(l), &d); err != nil || len(d.Jobs) == 0 {
			t.Fatalf("watch line %q: %v", l, err)
		}
	}
}

func TestJob(t *testing.T) {
	var all jobsDoc
	kfJSON(t, env(), 0, &all, "jobs", "--group", "token-signing", "--state", "SUCCEEDED", "--json")
	if len(all.Jobs) == 0 {
		t.Fatal("no job")
	}
	var j jobView
	kfJSON(t, env(), 0, &j, "job", all.Jobs[0].ID, "--json")
	if j.ID != all.Jobs[0].ID || len(j.History) < 5 || j.History[len(j.History)-1].To != "SUCCEEDED" || j.History[0].To != "PENDING" {
		t.Fatalf("job history: %+v", j.History)
	}
	if r := kf(t, env(), "job", j.ID); r.code != 0 || !strings.Contains(r.stdout, "history:") || !strings.Contains(r.stdout, "-> SUCCEEDED") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	var e errDocT
	kfJSON(t, env(), 3, &e, "job", "job-000000000000000000000000", "--json")
	if e.Error.Kind != "unknown_job" {
		t.Fatalf("%+v", e)
	}
}
