package iamsim

import (
	"path"
	"sort"
	"strings"
	"sync"
)

// Record is one authorization decision.
type Record struct {
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	Decision  string `json:"decision"`
	Error     string `json:"error,omitempty"`
}

// Ledger keeps every decision of every gate.
type Ledger struct {
	mu      sync.Mutex
	records []Record
}

func (l *Ledger) record(r Record) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
}

// Record adds a decision made outside a gate (the API Gateway's $connect
// and @connections checks).
func (l *Ledger) Record(r Record) { l.record(r) }

// Records returns a copy of every decision so far.
func (l *Ledger) Records() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.records...)
}

// Mark returns the number of records so far (a point to count from).
func (l *Ledger) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}

// Since returns the records after mark.
func (l *Ledger) Since(mark int) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), l.records[mark:]...)
}

// Denied returns the decisions that were not Allowed.
func (l *Ledger) Denied() []Record {
	var out []Record
	for _, r := range l.Records() {
		if r.Decision != string(Allowed) {
			out = append(out, r)
		}
	}
	return out
}

// CallsByPrincipal counts allowed calls per principal and action.
func CallsByPrincipal(recs []Record) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, r := range recs {
		if r.Decision != string(Allowed) {
			continue
		}
		if out[r.Principal] == nil {
			out[r.Principal] = map[string]int{}
		}
		out[r.Principal][r.Action]++
	}
	return out
}

// Unused returns, per principal, the granted action patterns that no
// allowed call in recs matched (least privilege, measured).
func Unused(principals []*Principal, recs []Record) map[string][]string {
	used := CallsByPrincipal(recs)
	out := map[string][]string{}
	for _, p := range principals {
		for _, a := range p.Actions() {
			hit := false
			for action := range used[p.Name] {
				if ok, _ := path.Match(strings.ToLower(a), strings.ToLower(action)); ok {
					hit = true
					break
				}
			}
			if !hit {
				out[p.Name] = append(out[p.Name], a)
			}
		}
		sort.Strings(out[p.Name])
	}
	return out
}
