package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportJSONIsFlatAndTableListsEveryFigure(t *testing.T) {
	var r Report
	r.Add("agent_wraps_per_s", 12.34567, "1/s", "")
	r.Add("fleet_failed_jobs", 0, "", "should be 0")
	path := filepath.Join(t.TempDir(), "bench.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a flat object of numbers: %v: %s", err, b)
	}
	if m["agent_wraps_per_s"] != 12.346 || len(m) != 2 {
		t.Fatalf("got %v", m)
	}
	if _, ok := m["fleet_failed_jobs"]; !ok {
		t.Fatal("zero figure dropped")
	}
	var sb strings.Builder
	r.Table(&sb)
	for _, k := range []string{"agent_wraps_per_s", "fleet_failed_jobs", "should be 0"} {
		if !strings.Contains(sb.String(), k) {
			t.Fatalf("table misses %s:\n%s", k, sb.String())
		}
	}
}
