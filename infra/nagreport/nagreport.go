// Package nagreport reads the compliance reports cdk-nag writes next to the
// synthesized templates (cdk.out/<pack>-<stack>-NagReport.csv), summarises
// them (rules checked, compliant, suppressed with their reasons) and names
// every finding left neither fixed nor suppressed. make lint-template runs
// it through infra/nagreport/cmd after cfn-lint.
package nagreport

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Packs are the cdk-nag rule packs the app applies (infra/stack.ApplyChecks),
// as they name their reports.
var Packs = []string{"AwsSolutions", "PCI.DSS.321"}

// Compliance values of a report line.
const (
	Compliant    = "Compliant"
	NonCompliant = "Non-Compliant"
	Suppressed   = "Suppressed"
	NotApplies   = "N/A"
)

// Line is one (rule, resource) result of a report.
type Line struct {
	Rule, Resource, Compliance, Reason, Level, Info string
}

// Report is one pack's report for one stack.
type Report struct {
	Pack, Stack string
	Lines       []Line
}

// ErrFindings is returned (wrapped) by Check when a finding is left open.
var ErrFindings = errors.New("cdk-nag findings neither fixed nor suppressed")

// ErrNoReport is returned (wrapped) when a template has no report of a pack.
var ErrNoReport = errors.New("cdk-nag report missing")

var header = []string{"Rule ID", "Resource ID", "Compliance", "Exception Reason", "Rule Level", "Rule Info"}

// Parse reads one report.
func Parse(pack, stack string, r io.Reader) (Report, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return Report{}, fmt.Errorf("%s report of %s: %w", pack, stack, err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(header, ",") {
		return Report{}, fmt.Errorf("%s report of %s: header is not %q", pack, stack, strings.Join(header, ","))
	}
	rep := Report{Pack: pack, Stack: stack}
	for i, row := range rows[1:] {
		if len(row) != len(header) {
			return Report{}, fmt.Errorf("%s report of %s: line %d has %d fields, want %d", pack, stack, i+2, len(row), len(header))
		}
		switch row[2] {
		case Compliant, NonCompliant, Suppressed, NotApplies:
		default:
			return Report{}, fmt.Errorf("%s report of %s: line %d: unknown compliance %q", pack, stack, i+2, row[2])
		}
		rep.Lines = append(rep.Lines, Line{Rule: row[0], Resource: row[1], Compliance: row[2], Reason: row[3], Level: row[4], Info: row[5]})
	}
	return rep, nil
}

// Read loads, for every <stack>.template.json in dir, the report of each of
// Packs; a template without one is an error (the checks did not run).
func Read(dir string) ([]Report, error) {
	templates, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil {
		return nil, err
	}
	if len(templates) == 0 {
		return nil, fmt.Errorf("%s: no *.template.json (run make synth)", dir)
	}
	sort.Strings(templates)
	var out []Report
	for _, t := range templates {
		stack := strings.TrimSuffix(filepath.Base(t), ".template.json")
		for _, pack := range Packs {
			// cdk-nag names a top-level stack's report <pack>--<stack>-NagReport.csv
			// (the empty part is the stage); the single-dash form is accepted too.
			f, err := os.Open(filepath.Join(dir, pack+"--"+stack+"-NagReport.csv"))
			if errors.Is(err, os.ErrNotExist) {
				f, err = os.Open(filepath.Join(dir, pack+"-"+stack+"-NagReport.csv"))
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s for stack %s (is stack.ApplyChecks applied to the app?): %w", ErrNoReport, pack, stack, err)
			}
			rep, err := Parse(pack, stack, f)
			f.Close()
			if err != nil {
				return nil, err
			}
			out = append(out, rep)
		}
	}
	return out, nil
}

// Count is one report's tally.
type Count struct {
	Rules, Compliant, Suppressed, NonCompliant, NotApplicable int
}

// Tally counts a report's lines (Rules: distinct rules that met a resource).
func (r Report) Tally() Count {
	var c Count
	rules := map[string]bool{}
	for _, l := range r.Lines {
		rules[l.Rule] = true
		switch l.Compliance {
		case Compliant:
			c.Compliant++
		case Suppressed:
			c.Suppressed++
		case NonCompliant:
			c.NonCompliant++
		case NotApplies:
			c.NotApplicable++
		}
	}
	c.Rules = len(rules)
	return c
}

// Summary writes the tallies, then each suppressed rule once per reason with
// the resources it covers, then every open finding.
func Summary(w io.Writer, reps []Report) {
	for _, r := range reps {
		c := r.Tally()
		fmt.Fprintf(w, "cdk-nag %s on %s: %d rules checked; %d compliant, %d suppressed, %d open (not applicable %d)\n",
			r.Pack, r.Stack, c.Rules, c.Compliant, c.Suppressed, c.NonCompliant, c.NotApplicable)
	}
	type key struct{ rule, reason string }
	byReason := map[key][]string{}
	var keys []key
	for _, r := range reps {
		for _, l := range r.Lines {
			if l.Compliance != Suppressed {
				continue
			}
			k := key{l.Rule, l.Reason}
			if byReason[k] == nil {
				keys = append(keys, k)
			}
			byReason[k] = append(byReason[k], strings.TrimPrefix(l.Resource, r.Stack+"/"))
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].rule != keys[j].rule {
			return keys[i].rule < keys[j].rule
		}
		return keys[i].reason < keys[j].reason
	})
	if len(keys) > 0 {
		fmt.Fprintln(w, "suppressed:")
	}
	for _, k := range keys {
		res := byReason[k]
		fmt.Fprintf(w, "  %s on %d resource(s) (%s): %s\n", k.rule, len(res), short(res), k.reason)
	}
	for _, r := range reps {
		for _, l := range r.Lines {
			if l.Compliance == NonCompliant {
				fmt.Fprintf(w, "OPEN %s (%s) %s: %s\n", l.Rule, l.Level, l.Resource, l.Info)
			}
		}
	}
}

func short(res []string) string {
	if len(res) <= 3 {
		return strings.Join(res, ", ")
	}
	return strings.Join(res[:3], ", ") + fmt.Sprintf(", +%d", len(res)-3)
}

// Check is nil when no report holds an open finding (of any level).
func Check(reps []Report) error {
	var open []string
	for _, r := range reps {
		for _, l := range r.Lines {
			if l.Compliance == NonCompliant {
				open = append(open, l.Rule+" on "+l.Resource)
			}
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("%w: %d (%s): fix the resource or add a NagSuppressions entry with its reason in infra/stack/nag.go",
			ErrFindings, len(open), strings.Join(open, "; "))
	}
	return nil
}
