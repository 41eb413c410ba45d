package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/store"
)

// EnvRotateFunctionArn names the rotate function for alarm actions.
const EnvRotateFunctionArn = "KEYFERRY_ROTATE_FUNCTION_ARN"

// environment is what every function reads at start-up (functions/awsconfig
// names the variables; the groups file is bundled next to bootstrap).
func environment(cp *ControlPlane, t store.Tables, p *Props) map[string]*string {
	env := map[string]*string{
		awsconfig.EnvJobsTable:      cp.Tables[t.Jobs].TableName(),
		awsconfig.EnvGenerationsTbl: cp.Tables[t.Generations].TableName(),
		awsconfig.EnvConnectionsTbl: cp.Tables[t.Connections].TableName(),
		awsconfig.EnvTriggersTable:  cp.Tables[t.Triggers].TableName(),
		awsconfig.EnvGroupsTable:    cp.Tables[t.Groups].TableName(),
		awsconfig.EnvPacingTable:    cp.Tables[t.Pacing].TableName(),
		awsconfig.EnvGroupsFile:     jsii.String(GroupsFileName),
		awsconfig.EnvSigningKey:     cp.SigningKey.KeyArn(),
		awsconfig.EnvWSEndpoint:     cp.stageHTTPS,
		// Alarms the engine reconciles invoke the rotate function directly. The
		// ARN is spelled out (not a reference) so the rotate function can carry
		// its own ARN without a circular dependency.
		EnvRotateFunctionArn: jsii.String("arn:" + *awscdk.Aws_PARTITION() + ":lambda:" + *awscdk.Aws_REGION() + ":" +
			*awscdk.Aws_ACCOUNT_ID() + ":function:keyferry-" + FnRotate),
	}
	if p.AssumeRoleArn != "" {
		env[awsconfig.EnvAssumeRoleARN] = jsii.String(p.AssumeRoleArn)
	}
	return env
}

// EnvNames lists the variables set on every function (tests check the mains read them).
func EnvNames() []string {
	return []string{awsconfig.EnvJobsTable, awsconfig.EnvGenerationsTbl, awsconfig.EnvConnectionsTbl,
		awsconfig.EnvTriggersTable, awsconfig.EnvGroupsTable, awsconfig.EnvGroupsFile, awsconfig.EnvSigningKey, awsconfig.EnvWSEndpoint}
}
