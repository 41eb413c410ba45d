package cfntemplate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// synthesized is the real template of examples/key-groups.yaml, synthesized
// once for the package (dummy bootstraps: assets are copied, not run).
var synthesized *Template

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "cfntemplate-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		fns, _ := filepath.Glob(filepath.Join(root, "functions/cmd/*"))
		for _, f := range fns {
			d := filepath.Join(dir, "assets", filepath.Base(f))
			os.MkdirAll(d, 0o755)
			os.WriteFile(filepath.Join(d, "bootstrap"), []byte("#!/bin/sh\n# "+filepath.Base(f)+"\n"), 0o755)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		synthesized, err = Synth(ctx, SynthOptions{ModuleRoot: root, GroupsFile: filepath.Join(root, "examples/key-groups.yaml"),
			LambdaAssets: filepath.Join(dir, "assets"), OutDir: filepath.Join(dir, "cdk.out")})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

func resolver() *Resolver {
	refs := Pseudo("111122223333", "us-east-1")
	attrs := map[string]any{}
	for id, r := range synthesized.Resources {
		switch r.Type {
		case TypeTable, TypeGlobalTable:
			refs[id] = r.Properties["TableName"]
			attrs[id+".Arn"] = "arn:aws:dynamodb:us-east-1:111122223333:table/" + r.Properties["TableName"].(string)
		case "AWS::KMS::Key":
			attrs[id+".Arn"] = "arn:aws:kms:us-east-1:111122223333:key/sandbox"
		case "AWS::ApiGatewayV2::Api":
			refs[id] = "sandboxapi"
		default:
			refs[id] = id
			attrs[id+".Arn"] = "arn:test:" + id
		}
	}
	return &Resolver{Refs: refs, Attrs: attrs}
}

func TestFunctions(t *testing.T) {
	tests := []struct {
		name     string
		fnName   string
		timeout  time.Duration
		memoryMB int
	}{
		{"rotate", "keyferry-rotate", 120 * time.Second, 256},
		{"keyferry-operator", "keyferry-operator", 120 * time.Second, 256},
		{"keepalive", "keyferry-keepalive", 120 * time.Second, 256},
		{"agent-message", "keyferry-agent-message", 30 * time.Second, 256},
		{"connect", "keyferry-connect", 30 * time.Second, 256},
		{"disconnect", "keyferry-disconnect", 30 * time.Second, 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := synthesized.Function(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if f.Name != tc.fnName || f.Timeout != tc.timeout || f.MemoryMB != tc.memoryMB {
				t.Errorf("got name %q timeout %s memory %d, want %q %s %d", f.Name, f.Timeout, f.MemoryMB, tc.fnName, tc.timeout, tc.memoryMB)
			}
			if f.Handler != "bootstrap" || f.Runtime != "provided.al2023" {
				t.Errorf("handler %q runtime %q", f.Handler, f.Runtime)
			}
			if b, err := os.ReadFile(filepath.Join(f.AssetDir, "bootstrap")); err != nil || !strings.Contains(string(b), strings.TrimPrefix(tc.fnName, "keyferry-")) {
				t.Errorf("asset dir %s: bootstrap %q, %v", f.AssetDir, b, err)
			}
			if _, err := os.Stat(filepath.Join(f.AssetDir, "key-groups.yaml")); err != nil {
				t.Errorf("groups file not bundled with the asset: %v", err)
			}
			if _, err := synthesized.Role(f.RoleLogicalID); err != nil {
				t.Errorf("role: %v", err)
			}
			if f.ReservedConcurrency < -1 {
				t.Errorf("reserved concurrency %d", f.ReservedConcurrency)
			}
			env, err := f.ResolveEnvironment(resolver())
			if err != nil {
				t.Fatal(err)
			}
			if env["KEYFERRY_JOBS_TABLE"] != "keyferry-jobs" || env["KEYFERRY_GROUPS_FILE"] != "key-groups.yaml" {
				t.Errorf("environment %v", env)
			}
			if env["KEYFERRY_WS_ENDPOINT"] != "https://sandboxapi.execute-api.us-east-1.amazonaws.com/prod" {
				t.Errorf("Fn::Sub: KEYFERRY_WS_ENDPOINT = %q", env["KEYFERRY_WS_ENDPOINT"])
			}
			if env["KEYFERRY_ROTATE_FUNCTION_ARN"] != "arn:aws:lambda:us-east-1:111122223333:function:keyferry-rotate" {
				t.Errorf("Fn::Join: KEYFERRY_ROTATE_FUNCTION_ARN = %q", env["KEYFERRY_ROTATE_FUNCTION_ARN"])
			}
		})
	}
	all, err := synthesized.Functions()
	if err != nil || len(all) < len(tests) {
		t.Fatalf("Functions: %d, %v", len(all), err)
	}
}

func TestFunctionMissing(t *testing.T) {
	_, err := synthesized.Function("nope")
	want := fmt.Sprintf("cfntemplate: function %q not in template %s", "nope", synthesized.Path)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	tests := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "absent.json"), "cfntemplate: read template"},
		{"not json", write("bad.json", "{"), "is not CloudFormation JSON"},
		{"no resources", write("empty.json", `{"Resources":{}}`), "has no Resources"},
		{"no type", write("notype.json", `{"Resources":{"A":{"Properties":{}}}}`), `resource "A" has no Type`},
		{"bad timeout", write("timeout.json", `{"Resources":{"F":{"Type":"AWS::Lambda::Function","Properties":{"Timeout":"soon"}}}}`), "Timeout soon is not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := Load(tc.path)
			if err == nil {
				_, err = tp.Functions()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := LoadStack(dir, ""); err == nil || !strings.Contains(err.Error(), "no *.template.json") {
		t.Fatalf("LoadStack of a folder without templates: %v", err)
	}
}

func actions(t *testing.T, docs []PolicyDocument) []string {
	var out []string
	for _, d := range docs {
		for _, s := range d.Statements {
			a, err := resolver().Strings(s.Action)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a...)
		}
	}
	return out
}

func TestRolePolicies(t *testing.T) {
	tests := []struct {
		fn           string
		want, absent []string
	}{
		{"rotate", []string{"kms:Sign", "kms:GetParametersForImport", "execute-api:ManageConnections", "dynamodb:PutItem"}, []string{"lambda:InvokeFunction"}},
		{"connect", []string{"dynamodb:PutItem"}, []string{"kms:Sign", "kms:ImportKeyMaterial"}},
		{"signing-pubkey", []string{"kms:GetPublicKey"}, []string{"kms:Sign", "dynamodb:PutItem"}},
	}
	for _, tc := range tests {
		t.Run(tc.fn, func(t *testing.T) {
			f, err := synthesized.Function(tc.fn)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := synthesized.RolePolicies(f.RoleLogicalID)
			if err != nil {
				t.Fatal(err)
			}
			got := actions(t, docs)
			for _, a := range tc.want {
				if !slices.Contains(got, a) {
					t.Errorf("role of %s lacks %s (has %v)", tc.fn, a, got)
				}
			}
			for _, a := range tc.absent {
				if slices.Contains(got, a) {
					t.Errorf("role of %s grants %s", tc.fn, a)
				}
			}
			managed := false
			for _, d := range docs {
				if d.AWSManaged {
					arn, err := resolver().String(d.ARN)
					if err != nil {
						t.Fatal(err)
					}
					managed = managed || arn == "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
				}
			}
			if !managed {
				t.Errorf("role of %s: AWSLambdaBasicExecutionRole not attached: %+v", tc.fn, docs)
			}
		})
	}
	if _, err := synthesized.RolePolicies("NoSuchRole"); err == nil || !strings.Contains(err.Error(), `role "NoSuchRole" not in template`) {
		t.Fatalf("missing role: %v", err)
	}
}

func TestManagedPolicies(t *testing.T) {
	got := map[string][]string{}
	for _, p := range synthesized.ManagedPolicies() {
		got[p.Source] = actions(t, []PolicyDocument{p})
	}
	agent, operator := false, false
	for id, a := range got {
		agent = agent || strings.HasPrefix(id, "AgentPolicy") && slices.Equal(a, []string{"execute-api:Invoke"})
		operator = operator || strings.HasPrefix(id, "OperatorPolicy") && slices.Contains(a, "lambda:InvokeFunction")
	}
	if !agent || !operator {
		t.Fatalf("agent policy %v, operator policy %v: %v", agent, operator, got)
	}
}

func TestTables(t *testing.T) {
	tables, err := synthesized.Tables()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Table{}
	for _, tb := range tables {
		byName[tb.Name] = tb
	}
	tests := []struct {
		name, hash string
		index      string
	}{
		{"keyferry-jobs", "job_id", "by_state"},
		{"keyferry-connections", "", ""},
		{"keyferry-generations", "", ""},
		{"keyferry-triggers", "", ""},
		{"keyferry-groups", "", ""},
	}
	for _, tc := range tests {
		tb, ok := byName[tc.name]
		if !ok {
			t.Errorf("table %s not in template (have %v)", tc.name, byName)
			continue
		}
		if len(tb.KeySchema) == 0 || tb.KeySchema[0].KeyType != "HASH" || (tc.hash != "" && tb.KeySchema[0].AttributeName != tc.hash) {
			t.Errorf("%s key schema %+v", tc.name, tb.KeySchema)
		}
		if tc.index != "" && !slices.ContainsFunc(tb.GlobalIndexes, func(i Index) bool { return i.IndexName == tc.index && len(i.KeySchema) == 2 }) {
			t.Errorf("%s indexes %+v", tc.name, tb.GlobalIndexes)
		}
	}
}

func TestRawResources(t *testing.T) {
	if n := len(synthesized.OfType(TypeSchedule)); n == 0 {
		t.Error("no AWS::Scheduler::Schedule")
	}
	if n := len(synthesized.OfType(TypeEventsRule)); n == 0 {
		t.Error("no AWS::Events::Rule")
	}
}

func TestResolver(t *testing.T) {
	r := &Resolver{Refs: map[string]any{"AWS::Region": "eu-west-1", "Api": "abc", "L": []any{"x", "y"}}, Attrs: map[string]any{"Fn.Arn": "arn:fn"}}
	tests := []struct {
		name string
		in   any
		want string
		err  string
	}{
		{"ref", map[string]any{"Ref": "Api"}, "abc", ""},
		{"getatt list", map[string]any{"Fn::GetAtt": []any{"Fn", "Arn"}}, "arn:fn", ""},
		{"getatt dotted", map[string]any{"Fn::GetAtt": "Fn.Arn"}, "arn:fn", ""},
		{"join", map[string]any{"Fn::Join": []any{"/", []any{"a", map[string]any{"Ref": "Api"}}}}, "a/abc", ""},
		{"sub", map[string]any{"Fn::Sub": "https://${Api}.${AWS::Region}/${Fn.Arn}/${!Literal}"}, "https://abc.eu-west-1/arn:fn/${Literal}", ""},
		{"sub map", map[string]any{"Fn::Sub": []any{"${X}-${Api}", map[string]any{"X": map[string]any{"Ref": "AWS::Region"}}}}, "eu-west-1-abc", ""},
		{"select split", map[string]any{"Fn::Select": []any{"1", map[string]any{"Fn::Split": []any{":", "a:b:c"}}}}, "b", ""},
		{"select ref list", map[string]any{"Fn::Select": []any{0, map[string]any{"Ref": "L"}}}, "x", ""},
		{"missing ref", map[string]any{"Ref": "Nope"}, "", `Ref "Nope": no value supplied`},
		{"missing attr", map[string]any{"Fn::Sub": "${Nope.Arn}"}, "", "Fn::GetAtt Nope.Arn: no value supplied"},
		{"select range", map[string]any{"Fn::Select": []any{5, []any{"a"}}}, "", "out of range"},
		{"unsupported", map[string]any{"Fn::If": []any{"C", "a", "b"}}, "", "Fn::If is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.String(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
