package iamsim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func moduleRoot(t *testing.T) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

func TestEvaluatorDecides(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := Start(ctx, moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pol := Policy{Name: "p", Policy: json.RawMessage(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*","Condition":{"StringEquals":{"kms:KeyOrigin":"EXTERNAL"}}},
		{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":"arn:aws:dynamodb:us-east-1:111122223333:table/jobs"},
		{"Effect":"Deny","Action":"dynamodb:PutItem","Resource":"arn:aws:dynamodb:us-east-1:111122223333:table/locked"},
		{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:us-east-1:111122223333:abc/prod/$connect"}]}`)}
	base := Request{Principal: "arn:aws:iam::111122223333:role/r", AccountID: "111122223333", IdentityPolicies: []Policy{pol}}
	for _, tc := range []struct {
		name, action, resource string
		ctx                    map[string]any
		want                   Decision
		invalid                bool
	}{
		{"condition met", "kms:CreateKey", "*", map[string]any{"kms:KeyOrigin": "EXTERNAL"}, Allowed, false},
		{"condition not met", "kms:CreateKey", "*", map[string]any{"kms:KeyOrigin": "AWS_KMS"}, ImplicitlyDenied, false},
		{"resource granted", "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:111122223333:table/jobs", nil, Allowed, false},
		{"other resource", "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:111122223333:table/other", nil, ImplicitlyDenied, false},
		{"explicit deny", "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:111122223333:table/locked", nil, ExplicitlyDenied, false},
		{"websocket route", "execute-api:Invoke", "arn:aws:execute-api:us-east-1:111122223333:abc/prod/$connect", nil, Allowed, false},
		{"other route", "execute-api:Invoke", "arn:aws:execute-api:us-east-1:111122223333:abc/test/$connect", nil, ImplicitlyDenied, false},
		{"action IAM does not define", "execute-api:Connect", "arn:aws:execute-api:us-east-1:111122223333:abc/prod/$connect", nil, "", true},
	} {
		r := base
		r.Action, r.Resource, r.Context = tc.action, tc.resource, tc.ctx
		d, err := e.Evaluate(ctx, r)
		if tc.invalid {
			if err == nil {
				t.Errorf("%s: decided %s, want an invalid-request error", tc.name, d)
			}
			continue
		}
		if err != nil || d != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.name, d, err, tc.want)
		}
	}
	unknown, err := e.UnknownActions(ctx, []string{"kms:CreateKey", "kms:*", "execute-api:Connect", "execute-api:Invoke", "nosuch:Thing"})
	if err != nil || len(unknown) != 2 || unknown[0] != "execute-api:Connect" || unknown[1] != "nosuch:Thing" {
		t.Errorf("unknown actions %v %v, want [execute-api:Connect nosuch:Thing]", unknown, err)
	}
}

func TestClassifiersReadTheRequest(t *testing.T) {
	ddb := &DynamoDB{Region: "us-east-1", Account: "111122223333"}
	calls, err := ddb.Classify(context.Background(), "DynamoDB_20120810.TransactWriteItems",
		[]byte(`{"TransactItems":[{"Put":{"TableName":"jobs"}},{"ConditionCheck":{"TableName":"locks"}}]}`))
	if err != nil || len(calls) != 2 || calls[0].Action != "dynamodb:PutItem" || calls[1].Action != "dynamodb:ConditionCheckItem" ||
		calls[1].Resource != "arn:aws:dynamodb:us-east-1:111122223333:table/locks" {
		t.Errorf("transaction: %+v %v", calls, err)
	}
	calls, err = ddb.Classify(context.Background(), "DynamoDB_20120810.Query", []byte(`{"TableName":"jobs","IndexName":"by_group"}`))
	if err != nil || len(calls) != 1 || calls[0].Resource != "arn:aws:dynamodb:us-east-1:111122223333:table/jobs/index/by_group" {
		t.Errorf("query on an index: %+v %v", calls, err)
	}
	k := &KMS{Region: "us-east-1", Account: "111122223333"}
	calls, err = k.Classify(context.Background(), "TrentService.CreateKey",
		[]byte(`{"Origin":"EXTERNAL","KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY","Tags":[{"TagKey":"keyferry:group","TagValue":"g"}]}`))
	if err != nil || len(calls) != 1 || calls[0].Resource != "*" || calls[0].Context["kms:KeyOrigin"] != "EXTERNAL" ||
		calls[0].Context["aws:RequestTag/keyferry:group"] != "g" || calls[0].Context["kms:MultiRegion"] != "false" {
		t.Errorf("CreateKey: %+v %v", calls, err)
	}
	if _, err := k.Classify(context.Background(), "DynamoDB_20120810.PutItem", []byte(`{}`)); err == nil {
		t.Error("a DynamoDB target at the KMS gate was classified")
	}
	q := &SQS{Region: "us-east-1", Account: "111122223333"}
	calls, err = q.Classify(context.Background(), "AmazonSQS.DeleteMessageBatch", []byte(`{"QueueUrl":"http://127.0.0.1:5000/111122223333/keyferry-jobs"}`))
	if err != nil || len(calls) != 1 || calls[0].Action != "sqs:DeleteMessage" || calls[0].Resource != "arn:aws:sqs:us-east-1:111122223333:keyferry-jobs" {
		t.Errorf("SQS batch: %+v %v", calls, err)
	}
}
