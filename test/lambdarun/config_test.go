package lambdarun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

func TestConfigFromTemplate(t *testing.T) {
	dir := t.TempDir()
	asset := filepath.Join(dir, "asset.abc")
	os.MkdirAll(asset, 0o755)
	b, _ := os.ReadFile(echoBin)
	os.WriteFile(filepath.Join(asset, "bootstrap"), b, 0o755)
	tpl := `{"Resources":{
	  "Tbl":{"Type":"AWS::DynamoDB::Table","Properties":{"TableName":"keyferry-jobs","KeySchema":[{"AttributeName":"job_id","KeyType":"HASH"}]}},
	  "Role":{"Type":"AWS::IAM::Role","Properties":{}},
	  "Fn":{"Type":"AWS::Lambda::Function","Metadata":{"aws:asset:path":"asset.abc"},"Properties":{
	    "FunctionName":"keyferry-echo","Timeout":2,"MemorySize":512,"ReservedConcurrentExecutions":1,
	    "Role":{"Fn::GetAtt":["Role","Arn"]},
	    "Environment":{"Variables":{"JOBS":{"Ref":"Tbl"},"WS":{"Fn::Sub":"https://${AWS::Region}/prod"}}}}}}}`
	path := filepath.Join(dir, "stack.template.json")
	os.WriteFile(path, []byte(tpl), 0o600)
	tp, err := cfntemplate.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &cfntemplate.Resolver{Refs: cfntemplate.Pseudo("111122223333", "us-east-1")}
	r.Refs["Tbl"] = "keyferry-jobs"
	cfg, err := ConfigFromTemplate(tp, "echo", r, "", map[string]string{"EXTRA": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "keyferry-echo" || cfg.Timeout != 2*time.Second || cfg.MemoryMB != 512 || cfg.Concurrency != 1 || cfg.RoleLogicalID != "Role" || cfg.TaskDir != asset {
		t.Fatalf("config %+v", cfg)
	}
	rt := newRuntime(t, cfg)
	for env, want := range map[string]string{"JOBS": "keyferry-jobs", "WS": "https://us-east-1/prod", "EXTRA": "x", "AWS_LAMBDA_FUNCTION_TIMEOUT": "2", "LAMBDA_TASK_ROOT": asset} {
		got, err := invokeEcho(t, rt, "keyferry-echo", map[string]any{"env": env})
		if err != nil || got.Env != want {
			t.Errorf("%s = %q (%v), want %q", env, got.Env, err, want)
		}
	}
	if _, err := ConfigFromTemplate(tp, "rotate", r, "", nil); err == nil || !strings.Contains(err.Error(), `cfntemplate: function "rotate" not in template `+path) {
		t.Fatalf("missing function: %v", err)
	}
	delete(r.Refs, "Tbl")
	if _, err := ConfigFromTemplate(tp, "echo", r, "", nil); err == nil || !strings.Contains(err.Error(), `environment JOBS: cfntemplate: Ref "Tbl": no value supplied`) {
		t.Fatalf("unresolvable env: %v", err)
	}
	if _, err := ConfigFromTemplate(tp, "echo", r, filepath.Join(dir, "nolocal"), nil); err == nil {
		t.Fatal("missing local bootstrap accepted")
	}
}
