package motoserver

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// BenchmarkWriteByTableSize measures one conditional PutItem and one
// two-item TransactWriteItems (the store's start and end of every job) on
// moto_server, beside each other, with tables of 10 and of 2000 items of
// 2 KiB (a job with its history). moto copies every table a transaction
// touches (copy.deepcopy, to roll back on a failed condition), so its
// transactions cost grows with the table; DynamoDB's does not. The ratio
// is why the fleet bench, which fills the jobs table, is bound by
// moto_server rather than by the control plane or the KMS quota.
func BenchmarkWriteByTableSize(b *testing.B) {
	ctx := context.Background()
	s, err := StartSerialized(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	db := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	})
	pad := strings.Repeat("h", 2048)
	for _, size := range []int{10, 2000} {
		jobs, groups := aws.String(fmt.Sprintf("jobs-%d", size)), aws.String(fmt.Sprintf("groups-%d", size))
		for _, t := range []*string{jobs, groups} {
			if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
				TableName: t, BillingMode: types.BillingModePayPerRequest,
				AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
				KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
			}); err != nil {
				b.Fatal(err)
			}
		}
		item := func(pk string) map[string]types.AttributeValue {
			return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "history": &types.AttributeValueMemberS{Value: pad}}
		}
		for i := 0; i < size; i++ {
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: jobs, Item: item(fmt.Sprintf("job-%d", i))}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("PutItem/items=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: jobs, Item: item(fmt.Sprintf("put-%d", i%10)),
					ConditionExpression:       aws.String("attribute_not_exists(pk) OR pk = :p"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: fmt.Sprintf("put-%d", i%10)}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("TransactWriteItems/items=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: jobs, Item: item(fmt.Sprintf("tx-%d", i%10))}},
					{Put: &types.Put{TableName: groups, Item: item("lock")}},
				}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
