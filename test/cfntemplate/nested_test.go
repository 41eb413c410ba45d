package cfntemplate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNestedStacksMerge: a nested stack's resources join the parent's view
// with its parameters replaced by what the parent passes, so a schedule in
// a nested stack targets the parent's function; bad assemblies are refused
// naming the nested stack.
func TestNestedStacksMerge(t *testing.T) {
	parent := `{"Resources":{
	  "Fn":{"Type":"AWS::Lambda::Function","Properties":{"FunctionName":"keyferry-rotate"}},
	  "Groups0":{"Type":"AWS::CloudFormation::Stack","Metadata":{"aws:asset:path":"appGroups0AB12.nested.template.json"},
	    "Properties":{"TemplateURL":"s3://x","Parameters":{"referencetoFnArn":{"Fn::GetAtt":["Fn","Arn"]}}}}}}`
	nested := `{"Parameters":{"referencetoFnArn":{"Type":"String"}},"Resources":{
	  "Schedulefleet0001":{"Type":"AWS::Scheduler::Schedule","Properties":{"ScheduleExpression":"rate(1 day)",
	    "Target":{"Arn":{"Ref":"referencetoFnArn"},"Input":"{\"group\":\"fleet-0001\"}"}}}}}`
	write := func(dir, name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write(dir, "app.template.json", parent)
	write(dir, "appGroups0AB12.nested.template.json", nested)
	tpl, err := LoadStack(dir, "")
	if err != nil {
		t.Fatalf("LoadStack with a nested stack: %v (the nested template is not a stack of its own)", err)
	}
	scs, err := tpl.Schedules()
	if err != nil || len(scs) != 1 {
		t.Fatalf("schedules %v %v, want the nested one", scs, err)
	}
	if scs[0].TargetLogicalID != "Fn" {
		t.Fatalf("nested schedule targets %q (%v), want the parent's Fn", scs[0].TargetLogicalID, scs[0].TargetArn)
	}

	for _, tc := range []struct{ name, parent, nested, want string }{
		{"parameter not passed", strings.Replace(parent, `"referencetoFnArn":{"Fn::GetAtt":["Fn","Arn"]}`, `"other":"x"`, 1), nested, "parameter referencetoFnArn"},
		{"duplicate id", parent, strings.Replace(nested, "Schedulefleet0001", "Fn", 1), "resource Fn is also in"},
		{"template missing", strings.Replace(parent, "appGroups0AB12", "appGone", 1), nested, "nested stack Groups0"},
		{"no asset path", strings.Replace(parent, `"Metadata":{"aws:asset:path":"appGroups0AB12.nested.template.json"},`, "", 1), nested, "names no .nested.template.json"},
	} {
		d := t.TempDir()
		write(d, "app.template.json", tc.parent)
		write(d, "appGroups0AB12.nested.template.json", tc.nested)
		if _, err := LoadStack(d, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
