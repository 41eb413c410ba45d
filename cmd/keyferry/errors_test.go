package main

import (
	"strings"
	"testing"
)

func TestEnvironmentErrors(t *testing.T) {
	tests := []struct {
		name     string
		drop     []string
		extra    []string
		code     int
		kind     string
		contains string
	}{
		{"credentials missing", []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, nil, 5, "credentials", "no AWS credentials"},
		{"region missing", []string{"AWS_REGION", "AWS_DEFAULT_REGION"}, nil, 5, "credentials", "region"},
		{"DynamoDB unreachable", []string{"AWS_ENDPOINT_URL_DYNAMODB"}, []string{"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:1"}, 6, "unreachable", "unreachable"},
		// The operator's policy grants only the deployed tables: IAM refuses
		// a wrong prefix (as on AWS) before DynamoDB could answer not found.
		{"wrong table prefix", nil, []string{"KEYFERRY_TABLE_PREFIX=nope-"}, 5, "credentials", "table-prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := append(env(tc.drop...), tc.extra...)
			var d errDocT
			r := kfJSON(t, e, tc.code, &d, "jobs", "--json")
			if d.Error.Kind != tc.kind || !strings.Contains(d.Error.Message, tc.contains) {
				t.Fatalf("%+v", d)
			}
			if !strings.HasPrefix(r.stderr, "keyferry: ") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Fatalf("want one clean line on stderr, got %q", r.stderr)
			}
		})
	}
	// The operator Lambda endpoint unreachable.
	e := append(env("AWS_ENDPOINT_URL_LAMBDA"), "AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:1")
	var d errDocT
	kfJSON(t, e, 6, &d, "rotate", "webhook-mac", "--json")
}
