package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/cfntemplate"
	"github.com/keyferry/keyferry/test/lambdarun"
	"gopkg.in/yaml.v3"
)

// FunctionsRIE runs every function of the synthesized template as its
// real bootstrap behind the Lambda Runtime Interface Emulator
// (Options.Functions); FunctionsInProcess calls the Go handlers in this
// process.
const (
	FunctionsInProcess = "in-process"
	FunctionsRIE       = "rie"
)

// BuildLambdas builds one linux/amd64 bootstrap per function under
// <module>/build/lambda-local/<fn>/bootstrap (the release's code and tags:
// -tags lambda.norpc, CGO_ENABLED=0) and build/aws-lambda-rie from the
// pinned go tool, under a lock so parallel test packages share one build.
func BuildLambdas(ctx context.Context) (bootstrapDir, rie string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	build := filepath.Join(root, "build")
	if err := os.MkdirAll(build, 0o755); err != nil {
		return "", "", err
	}
	unlock, err := lockFile(filepath.Join(build, ".lambda-local.lock"))
	if err != nil {
		return "", "", err
	}
	defer unlock()
	bootstrapDir, rie = filepath.Join(build, "lambda-local"), filepath.Join(build, "aws-lambda-rie")
	fns, _ := filepath.Glob(filepath.Join(root, "functions", "cmd", "*"))
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("sandbox: go %s: %w: %s", strings.Join(args, " "), err, b)
		}
		return nil
	}
	for _, f := range fns {
		name := filepath.Base(f)
		if err := run("build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w",
			"-o", filepath.Join(bootstrapDir, name, "bootstrap"), "./functions/cmd/"+name); err != nil {
			return "", "", err
		}
	}
	if err := run("build", "-o", rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"); err != nil {
		return "", "", err
	}
	return bootstrapDir, rie, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sandbox: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// startFunctions synthesizes the stack for the sandbox's groups file, runs
// every function of the template under lambdarun with the template's
// timeout, memory, concurrency and environment (intrinsics resolved to the
// sandbox's tables, key and endpoints), routes the gateway's websocket
// routes to their functions as the template integrates them, and puts
// every function behind the Lambda Invoke API.
func (s *Sandbox) startFunctions(ctx context.Context, groupsFile string) error {
	bootstraps, rie, err := BuildLambdas(ctx)
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	unlock, err := lockFile(filepath.Join(root, "build", ".lambda-local.lock"))
	if err != nil {
		return err
	}
	// Synth stages the groups file into the assets folder: one at a time.
	// The assembly is cached by its inputs; the agent's identity key,
	// fresh on every start, is in the groups file but not the template.
	s.Template, err = cfntemplate.Synth(ctx, cfntemplate.SynthOptions{ModuleRoot: root, GroupsFile: groupsFile,
		LambdaAssets: bootstraps, OutDir: filepath.Join(s.Dir, "cdk.out"), CacheDir: filepath.Join(root, "build", "synth-cache"),
		CacheNormalize: withoutAgentKeys})
	unlock()
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	res := s.resolver()
	endpoints := map[string]string{"KMS": s.Endpoints.KMS, "DYNAMODB": s.Endpoints.DynamoDB, "SQS": s.motoSvc.URL()}
	if !s.NoIAM {
		if err := s.startIAM(ctx, root, res); err != nil {
			return err
		}
		endpoints = map[string]string{"KMS": s.iam.kms, "DYNAMODB": s.iam.ddb, "SQS": s.iam.sqs}
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, "lambda.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	s.lambdaLog = out
	s.Runtime = lambdarun.New(lambdarun.Options{RIE: rie, Region: Region, Account: Account, Output: out, Log: s.Log.With("component", "lambda"),
		AccountConcurrency: s.AccountConcurrency, Credentials: s.FunctionCredentials, Env: []string{
			"AWS_ENDPOINT_URL_KMS=" + endpoints["KMS"],
			"AWS_ENDPOINT_URL_DYNAMODB=" + endpoints["DYNAMODB"],
			"AWS_ENDPOINT_URL_SQS=" + endpoints["SQS"],
			// moto_server plays the other services the functions call.
			"AWS_ENDPOINT_URL_CLOUDWATCH=" + s.motoSvc.URL(),
			"AWS_ENDPOINT_URL_EVENTBRIDGE=" + s.motoSvc.URL(),
			"AWS_ENDPOINT_URL_SCHEDULER=" + s.motoSvc.URL(),
			"AWS_ENDPOINT_URL_STS=" + s.motoSvc.URL(),
			"AWS_ENDPOINT_URL_LAMBDA=" + s.Lambda.URL(),
		}})
	override := map[string]string{}
	for _, k := range []string{"KEYFERRY_WS_ENDPOINT", "KEYFERRY_JOB_QUEUE_URL", "KEYFERRY_JOB_TIMEOUT", "KEYFERRY_REQUEST_TTL", "KEYFERRY_QUOTA_SCALE", "KEYFERRY_SANDBOX_DIR"} {
		if v := os.Getenv(k); v != "" {
			override[k] = v
		}
	}
	fns, err := s.Template.Functions()
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	byLogical := map[string]string{}
	for _, f := range fns {
		cfg, err := lambdarun.ConfigFromTemplate(s.Template, f.LogicalID, res, "", override)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := s.Runtime.Add(cfg); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		byLogical[f.LogicalID] = cfg.Name
		s.Lambda.Register(cfg.Name, s.Runtime.Handler(cfg.Name))
	}
	routes, err := s.websocketRoutes(byLogical)
	if err != nil {
		return err
	}
	for route, fn := range routes {
		s.Gateway.Route(route, apigwemu.Invoker(func(ctx context.Context, payload []byte) ([]byte, error) {
			return s.Runtime.Invoke(ctx, fn, payload)
		}))
	}
	return nil
}

// withoutAgentKeys is a groups file with every agent's public_key replaced
// by one placeholder: the synth cache's view of it (the sandbox makes a
// fresh identity key on every start; the template never contains it).
func withoutAgentKeys(b []byte) []byte {
	var doc map[string]any
	if yaml.Unmarshal(b, &doc) != nil {
		return b
	}
	pools, _ := doc["hsm_pools"].([]any)
	for _, p := range pools {
		pm, _ := p.(map[string]any)
		agents, _ := pm["agents"].([]any)
		for _, a := range agents {
			if am, ok := a.(map[string]any); ok && am["public_key"] != nil {
				am["public_key"] = "AGENT-IDENTITY"
			}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return b
	}
	return out
}

// FunctionCredentials gives a function's instances their credentials:
// Options.Credentials when set, else their execution role's key (IAM from
// the template), else the sandbox's cloud key.
func (s *Sandbox) FunctionCredentials(fn, role string) (string, string) {
	if s.Credentials != nil {
		return s.Credentials(fn, role)
	}
	return s.roleCredentials(fn, role)
}

// resolver maps the template's references to the sandbox: tables to their
// names and ARNs, the signing key to its ARN, the API to the emulator, and
// every other resource to its logical id and a conventional ARN.
func (s *Sandbox) resolver() *cfntemplate.Resolver {
	r := &cfntemplate.Resolver{Refs: cfntemplate.Pseudo(Account, Region), Attrs: map[string]any{}}
	for id, res := range s.Template.Resources {
		r.Refs[id] = id
		r.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:cloudformation:%s:%s:resource/%s", Region, Account, id)
		switch res.Type {
		case cfntemplate.TypeTable, cfntemplate.TypeGlobalTable:
			name, _ := res.Properties["TableName"].(string)
			r.Refs[id] = name
			r.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", Region, Account, name)
		case "AWS::KMS::Key":
			r.Refs[id] = s.signingKeyARN
			r.Attrs[id+".Arn"] = s.signingKeyARN
		case "AWS::SQS::Queue":
			r.Refs[id] = s.Endpoints.JobQueue
			r.Attrs[id+".Arn"] = "arn:aws:sqs:" + Region + ":" + Account + ":" + JobQueueName
		case "AWS::ApiGatewayV2::Api":
			r.Refs[id] = s.Gateway.APIID()
		case cfntemplate.TypeFunction:
			name, _ := res.Properties["FunctionName"].(string)
			r.Refs[id] = name
			r.Attrs[id+".Arn"] = fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, Account, name)
		}
	}
	return r
}

// websocketRoutes reads route key -> function name from the template's
// AWS::ApiGatewayV2::Route and Integration resources.
func (s *Sandbox) websocketRoutes(byLogical map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, rt := range s.Template.OfType("AWS::ApiGatewayV2::Route") {
		key, _ := rt.Properties["RouteKey"].(string)
		integ := firstRef(rt.Properties["Target"], "Ref")
		ir, ok := s.Template.Resource(integ)
		if !ok {
			return nil, fmt.Errorf("sandbox: route %s in %s: integration %q not in template", key, s.Template.Path, integ)
		}
		fn := byLogical[firstRef(ir.Properties["IntegrationUri"], "Fn::GetAtt")]
		if fn == "" {
			return nil, fmt.Errorf("sandbox: route %s in %s: integration %s names no function of the template", key, s.Template.Path, integ)
		}
		out[key] = fn
	}
	if out["$connect"] == "" {
		return nil, fmt.Errorf("sandbox: template %s has no $connect route", s.Template.Path)
	}
	return out, nil
}

// firstRef finds the first {"Ref": id} or {"Fn::GetAtt": [id, ...]} in v.
func firstRef(v any, kind string) string {
	switch x := v.(type) {
	case map[string]any:
		if a, ok := x[kind]; ok {
			switch y := a.(type) {
			case string:
				id, _, _ := strings.Cut(y, ".")
				return id
			case []any:
				if len(y) > 0 {
					s, _ := y[0].(string)
					return s
				}
			}
		}
		for _, e := range x {
			if id := firstRef(e, kind); id != "" {
				return id
			}
		}
	case []any:
		for _, e := range x {
			if id := firstRef(e, kind); id != "" {
				return id
			}
		}
	}
	return ""
}
