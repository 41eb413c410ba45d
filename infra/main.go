// Command infra is the keyferry CDK app (`cdk.json` runs `go run ./infra`).
// It loads the key-groups file, fails synth with the validator's messages if
// the file is invalid, and synthesises one control-plane stack per target
// account-region listed in it.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/infra/stack"
	"github.com/keyferry/keyferry/shared/groups"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	file := contextString(app, "keyferry:groupsFile", "examples/key-groups.yaml")
	assets := contextString(app, "keyferry:lambdaAssets", "build/lambda")
	cfg, err := groups.Load(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "keyferry: %s is invalid; nothing synthesised:\n%v\n", file, err)
		os.Exit(1)
	}
	for _, t := range cfg.Targets() {
		id := fmt.Sprintf("keyferry-%s-%s", t.Account, t.Region)
		stack.NewControlPlane(app, id, &stack.Props{
			StackProps:    awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(t.Account), Region: jsii.String(t.Region)}},
			Config:        cfg,
			GroupsFile:    file,
			Target:        t,
			LambdaAssets:  assets,
			AssumeRoleArn: contextString(app, "keyferry:assumeRoleArn", ""),
		})
	}
	stack.ApplyChecks(app, true)
	app.Synth(nil)
}

func contextString(app awscdk.App, key, def string) string {
	if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}
