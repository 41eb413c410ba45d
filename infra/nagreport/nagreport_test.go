package nagreport

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const head = `Rule ID,Resource ID,Compliance,Exception Reason,Rule Level,Rule Info` + "\n"

func line(rule, res, comp, reason, level string) string {
	return `"` + rule + `","st/` + res + `","` + comp + `","` + reason + `","` + level + `","info of ` + rule + `"` + "\n"
}

// write lays out a cloud assembly with one template and the given reports (pack -> CSV).
func write(t *testing.T, reports map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "st.template.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	for pack, body := range reports {
		if err := os.WriteFile(filepath.Join(dir, pack+"--st-NagReport.csv"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadAndCheck(t *testing.T) {
	clean := head + line("AwsSolutions-SQS4", "Q/Resource", Compliant, "N/A", "Error") +
		line("AwsSolutions-IAM5", "P/Resource", Suppressed, "[Resource::*] X-Ray has no resource ARNs", "Error") +
		line("AwsSolutions-IAM5", "R/Resource", Suppressed, "[Resource::*] X-Ray has no resource ARNs", "Error")
	pci := head + line("PCI.DSS.321-LambdaInsideVPC", "F/Resource", Suppressed, "no private resource", "Error")
	tests := []struct {
		name    string
		reports map[string]string
		wantErr error  // from Read or Check
		wantMsg string // in the error
		summary []string
	}{
		{name: "clean", reports: map[string]string{"AwsSolutions": clean, "PCI.DSS.321": pci},
			summary: []string{"cdk-nag AwsSolutions on st: 2 rules checked; 1 compliant, 2 suppressed, 0 open",
				"AwsSolutions-IAM5 on 2 resource(s) (P/Resource, R/Resource): [Resource::*] X-Ray has no resource ARNs",
				"PCI.DSS.321-LambdaInsideVPC on 1 resource(s) (F/Resource): no private resource"}},
		{name: "open error", reports: map[string]string{"AwsSolutions": clean + line("AwsSolutions-SQS3", "Q/Resource", NonCompliant, "N/A", "Error"), "PCI.DSS.321": pci},
			wantErr: ErrFindings, wantMsg: "AwsSolutions-SQS3 on st/Q/Resource",
			summary: []string{"OPEN AwsSolutions-SQS3 (Error) st/Q/Resource"}},
		{name: "open warning fails too", reports: map[string]string{"AwsSolutions": clean, "PCI.DSS.321": pci + line("PCI.DSS.321-X", "F/Resource", NonCompliant, "N/A", "Warning")},
			wantErr: ErrFindings, wantMsg: "PCI.DSS.321-X on st/F/Resource"},
		{name: "pack missing", reports: map[string]string{"AwsSolutions": clean},
			wantErr: ErrNoReport, wantMsg: "PCI.DSS.321 for stack st"},
		{name: "bad header", reports: map[string]string{"AwsSolutions": "Rule,Resource\n", "PCI.DSS.321": pci},
			wantMsg: "AwsSolutions report of st: header is not"},
		{name: "unknown compliance", reports: map[string]string{"AwsSolutions": head + line("A", "B", "Maybe", "N/A", "Error"), "PCI.DSS.321": pci},
			wantMsg: `line 2: unknown compliance "Maybe"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reps, err := Read(write(t, tc.reports))
			var buf bytes.Buffer
			if err == nil {
				Summary(&buf, reps)
				err = Check(reps)
			}
			if tc.wantMsg == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantMsg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v is not %v", err, tc.wantErr)
			}
			for _, s := range tc.summary {
				if !strings.Contains(buf.String(), s) {
					t.Errorf("summary lacks %q:\n%s", s, buf.String())
				}
			}
		})
	}
}

func TestReadWithoutTemplates(t *testing.T) {
	if _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.template.json") {
		t.Fatalf("err = %v", err)
	}
}
