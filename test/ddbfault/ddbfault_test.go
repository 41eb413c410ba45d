package ddbfault_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyferry/keyferry/test/ddbfault"
	"github.com/keyferry/keyferry/test/motoserver"
)

var motoURL string

func TestMain(m *testing.M) {
	srv, err := motoserver.StartSerialized(context.Background())
	if err != nil {
		// moto_server is installed by make deps; its absence is a failure.
		println("ddbfault tests:", err.Error())
		os.Exit(1)
	}
	motoURL = srv.URL()
	code := m.Run()
	srv.Close()
	os.Exit(code)
}

func client(url string, retry bool) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})}, func(o *dynamodb.Options) {
		if !retry {
			o.Retryer = aws.NopRetryer{}
		}
	})
}

func TestOperation(t *testing.T) {
	for in, want := range map[string]string{
		"DynamoDB_20120810.PutItem":            "PutItem",
		"DynamoDB_20120810.TransactWriteItems": "TransactWriteItems",
		"TrentService.Encrypt":                 "",
		"":                                     "",
		"DynamoDB_20120810":                    "",
	} {
		if got := ddbfault.Operation(in); got != want {
			t.Errorf("Operation(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFaults: every Action kind through the real SDK against moto_server:
// what the caller sees, and whether the write happened.
func TestFaults(t *testing.T) {
	ctx := context.Background()
	direct := client(motoURL, true)
	table := "ddbfault-" + t.Name()
	if _, err := direct.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}}}); err != nil {
		t.Fatal(err)
	}
	exists := func(id string) bool {
		out, err := direct.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item != nil
	}
	put := func(c *dynamodb.Client, id string) error {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table),
			Item:                map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
			ConditionExpression: aws.String("attribute_not_exists(id)")})
		return err
	}
	for _, tc := range []struct {
		name      string
		action    ddbfault.Action
		retry     bool
		wantErr   func(error) bool
		wantWrite bool
		wantSeen  int32
	}{
		{"lost race", ddbfault.Action{ErrorType: "ConditionalCheckFailedException"}, true,
			func(err error) bool { var e *types.ConditionalCheckFailedException; return errors.As(err, &e) }, false, 1},
		{"5xx once then retried", ddbfault.Action{ErrorType: "InternalServerError"}, true,
			func(err error) bool { return err == nil }, true, 2},
		{"throttled once then retried", ddbfault.Action{ErrorType: "ProvisionedThroughputExceededException"}, true,
			func(err error) bool { return err == nil }, true, 2},
		{"timeout: never arrives", ddbfault.Action{Abort: true}, false,
			func(err error) bool { return err != nil }, false, 1},
		{"answer lost after the write, SDK retry meets its own write", ddbfault.Action{DropResponse: true}, true,
			func(err error) bool { var e *types.ConditionalCheckFailedException; return errors.As(err, &e) }, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen atomic.Int32
			p, err := ddbfault.Start(motoURL, func(op string, body []byte) *ddbfault.Action {
				if op != "PutItem" {
					return nil
				}
				if seen.Add(1) == 1 {
					a := tc.action
					return &a
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			id := tc.name
			err = put(client(p.URL(), tc.retry), id)
			if !tc.wantErr(err) {
				t.Fatalf("error %v not as expected", err)
			}
			if got := exists(id); got != tc.wantWrite {
				t.Fatalf("write happened: %v, want %v", got, tc.wantWrite)
			}
			if seen.Load() != tc.wantSeen {
				t.Fatalf("proxy saw %d PutItem requests, want %d", seen.Load(), tc.wantSeen)
			}
		})
	}
}

func TestTransactionCanceled(t *testing.T) {
	p, err := ddbfault.Start(motoURL, func(op string, body []byte) *ddbfault.Action {
		if op == "TransactWriteItems" && ddbfault.Conditional(body) {
			return &ddbfault.Action{ErrorType: "TransactionCanceledException"}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = client(p.URL(), true).TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{
		Put: &types.Put{TableName: aws.String("nope"), Item: map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: "x"}},
			ConditionExpression: aws.String("attribute_not_exists(id)")}}}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 1 || aws.ToString(tce.CancellationReasons[0].Code) != "ConditionalCheckFailed" {
		t.Fatalf("err = %v, want TransactionCanceledException with one ConditionalCheckFailed reason", err)
	}
}

func TestStartRejectsBadTarget(t *testing.T) {
	for _, target := range []string{"", "127.0.0.1:8000", "https://example.com", "http://"} {
		if _, err := ddbfault.Start(target, nil); err == nil {
			t.Errorf("Start(%q) accepted", target)
		}
	}
}
