package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestStartAnswersAndCloseStops(t *testing.T) {
	s, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.URL() + "/moto-api/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.Close()
	if _, err := http.Get(s.URL() + "/moto-api/"); err == nil {
		t.Fatal("moto_server still answering after Close")
	}
}

// TestDynamoDBFrontKeepsWritesIsolated: through StartSerialized's front,
// concurrent conditional puts of one key let exactly one through, and
// transactions refused by their condition do not undo the plain writes
// made while they ran (moto_server's threads alone lose them: a refused
// transaction restores its deep copy of the table).
func TestDynamoDBFrontKeepsWritesIsolated(t *testing.T) {
	ctx := context.Background()
	s, err := StartSerialized(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	})
	table := aws.String("isolation")
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: table, BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	item := func(pk string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item("taken")}); err != nil {
		t.Fatal(err)
	}
	// A table of some size: moto copies it per transaction, which widens
	// the window in which its threads interleave.
	for i := 0; i < 200; i++ {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item(fmt.Sprintf("seed-%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 48
	var wg sync.WaitGroup
	var won atomic.Int64
	errs := make(chan error, 3*n)
	for i := 0; i < n; i++ {
		wg.Add(3)
		go func() { // one of n may create "lock"
			defer wg.Done()
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item("lock"), ConditionExpression: aws.String("attribute_not_exists(pk)")})
			var ccf *types.ConditionalCheckFailedException
			switch {
			case err == nil:
				won.Add(1)
			case !errors.As(err, &ccf):
				errs <- err
			}
		}()
		go func() { // refused: "taken" exists
			defer wg.Done()
			_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: table, Item: item(fmt.Sprintf("never-%d", i))}},
				{Put: &types.Put{TableName: table, Item: item("taken"), ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			}})
			if err == nil {
				errs <- fmt.Errorf("transaction %d on an existing item succeeded", i)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item(fmt.Sprintf("plain-%d", i))}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if won.Load() != 1 {
		t.Errorf("%d conditional puts of one new key succeeded, want 1", won.Load())
	}
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: table, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, it := range out.Items {
		have[it["pk"].(*types.AttributeValueMemberS).Value] = true
	}
	for i := 0; i < n; i++ {
		if !have[fmt.Sprintf("plain-%d", i)] {
			t.Errorf("plain-%d lost: a refused transaction undid it", i)
		}
		if have[fmt.Sprintf("never-%d", i)] {
			t.Errorf("never-%d written by a refused transaction", i)
		}
	}
}
