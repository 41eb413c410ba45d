package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// EnvOperatorFunction overrides the operator function name.
const EnvOperatorFunction = "KEYFERRY_OPERATOR_FUNCTION"

// app holds one invocation's options and lazily built clients.
type app struct {
	name           string
	getenv         func(string) string
	stdout, stderr io.Writer
	code           int // exit code of a command that printed its own verdict

	asJSON      bool
	tablePrefix string
	function    string
	groupsFile  string
	region      string

	cfg    *aws.Config
	st     *store.Store
	kms    *kms.Client
	lambda *lambda.Client
}

// flags returns a FlagSet with the options every command shares.
func (a *app) flags(name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.BoolVar(&a.asJSON, "json", false, "print a JSON document on stdout (errors too)")
	fs.StringVar(&a.tablePrefix, "table-prefix", "", "DynamoDB table name prefix (default $KEYFERRY_TABLE_PREFIX or \"keyferry-\")")
	fs.StringVar(&a.function, "function", "", "operator Lambda function name or ARN (default $KEYFERRY_OPERATOR_FUNCTION or keyferry-operator)")
	fs.StringVar(&a.groupsFile, "groups", "", "the deployment's key-groups file (default $KEYFERRY_GROUPS_FILE)")
	fs.StringVar(&a.region, "region", "", "AWS region (default: the standard chain, e.g. $AWS_REGION)")
	fs.Usage = func() {
		fmt.Fprintf(a.stdout, "Usage: keyferry %s\n\n%s\n\nFlags:\n", synopsis, help)
		fs.SetOutput(a.stdout)
		fs.PrintDefaults()
		fs.SetOutput(a.stderr)
		fmt.Fprintln(a.stdout, "\nExit codes: 0 ok, 1 failed, 2 usage, 3 unknown group/job, 4 no agent, 5 credentials, 6 unreachable, 7 control plane, 8 timeout.")
	}
	return fs
}

// parse parses args, allowing flags after positional arguments; it returns
// the positional arguments. --help is errHelp.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, &cliError{code: exitUsage, kind: "usage", err: err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// awsConfig loads the standard AWS configuration and checks that
// credentials and a region exist, so a missing one is a clear error.
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.AddWithMaxAttempts(awsconfig.NewRetryer(), 3)
		}),
	}
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, &cliError{code: exitCredentials, kind: "credentials", err: fmt.Errorf("AWS configuration: %w", err)}
	}
	if cfg.Region == "" {
		return cfg, &cliError{code: exitCredentials, kind: "credentials", err: errors.New("no AWS region: set AWS_REGION (or a profile's region) or pass --region")}
	}
	if cfg.Credentials == nil {
		return cfg, &cliError{code: exitCredentials, kind: "credentials", err: errors.New("no AWS credentials found")}
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return cfg, &cliError{code: exitCredentials, kind: "credentials",
			err: fmt.Errorf("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or log in (aws sso login): %s", firstLine(err.Error()))}
	}
	a.cfg = &cfg
	return cfg, nil
}

// tables resolves the table names like the functions do (awsconfig.FromEnv),
// with --table-prefix in front of KEYFERRY_TABLE_PREFIX.
func (a *app) tables() store.Tables {
	getenv := func(k string) string {
		if k == awsconfig.EnvTablePrefix && a.tablePrefix != "" {
			return a.tablePrefix
		}
		return a.getenv(k)
	}
	s, _ := awsconfig.FromEnv(getenv) // only the table names are used
	return s.Tables
}

func (a *app) store(ctx context.Context) (*store.Store, error) {
	if a.st == nil {
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		a.st = store.New(dynamodb.NewFromConfig(cfg), a.tables())
	}
	return a.st, nil
}

func (a *app) kmsClient(ctx context.Context) (*kms.Client, error) {
	if a.kms == nil {
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		a.kms = kms.NewFromConfig(cfg)
	}
	return a.kms, nil
}

func (a *app) lambdaClient(ctx context.Context) (*lambda.Client, error) {
	if a.lambda == nil {
		cfg, err := a.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		a.lambda = lambda.NewFromConfig(cfg)
	}
	return a.lambda, nil
}

func (a *app) functionName() string {
	if a.function != "" {
		return a.function
	}
	if v := a.getenv(EnvOperatorFunction); v != "" {
		return v
	}
	return "keyferry-operator"
}

// groupsPath is --groups or KEYFERRY_GROUPS_FILE ("" when neither).
func (a *app) groupsPath() string {
	if a.groupsFile != "" {
		return a.groupsFile
	}
	return a.getenv(awsconfig.EnvGroupsFile)
}

// deployment loads the deployment's groups file; required says whether a
// missing file is an error (otherwise nil, nil).
func (a *app) deployment(required bool) (*groups.Config, error) {
	p := a.groupsPath()
	if p == "" {
		if required {
			return nil, usageErrorf("keyferry %s needs the deployment's key-groups file: pass --groups FILE or set %s", a.name, awsconfig.EnvGroupsFile)
		}
		return nil, nil
	}
	cfg, err := groups.Load(p)
	if err != nil {
		return nil, &cliError{code: exitFailed, kind: "invalid_groups_file", err: fmt.Errorf("groups file %s: %w", p, err)}
	}
	return cfg, nil
}

// emit prints v as JSON (with --json) or calls table.
func (a *app) emit(v any, table func(w io.Writer)) {
	if a.asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return
	}
	table(a.stdout)
}

// progress prints a progress line: on stdout in table mode, on stderr with --json.
func (a *app) progress(format string, args ...any) {
	w := a.stdout
	if a.asJSON {
		w = a.stderr
	}
	fmt.Fprintf(w, format+"\n", args...)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
