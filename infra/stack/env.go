package stack

import (
	"github.com/aws/jsii-runtime-go"

	"github.com/keyferry/keyferry/functions/store"
)

// environment is what every function reads at start-up.
func environment(cp *ControlPlane, t store.Tables, p *Props) map[string]*string {
	env := map[string]*string{
		"KEYFERRY_TABLE_JOBS":         cp.Tables[t.Jobs].TableName(),
		"KEYFERRY_TABLE_GENERATIONS":  cp.Tables[t.Generations].TableName(),
		"KEYFERRY_TABLE_CONNECTIONS":  cp.Tables[t.Connections].TableName(),
		"KEYFERRY_TABLE_TRIGGERS":     cp.Tables[t.Triggers].TableName(),
		"KEYFERRY_TABLE_GROUPS":       cp.Tables[t.Groups].TableName(),
		"KEYFERRY_GROUPS_FILE":        jsii.String(GroupsFileName),
		"KEYFERRY_SIGNING_KEY_ID":     cp.SigningKey.KeyArn(),
		"KEYFERRY_WEBSOCKET_ENDPOINT": cp.stageHTTPS,
		"KEYFERRY_METRICS_NAMESPACE":  jsii.String(MetricsNamespace),
	}
	if p.AssumeRoleArn != "" {
		env["KEYFERRY_ASSUME_ROLE_ARN"] = jsii.String(p.AssumeRoleArn)
	}
	return env
}
