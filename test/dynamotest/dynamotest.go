// Package dynamotest runs DynamoDB (and CloudWatch) on moto_server for the
// control plane's tests: one moto_server per test binary on a free 127.0.0.1
// port (test/motoserver, started from TestMain with Main), and fresh,
// uniquely prefixed tables per test.
package dynamotest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/motoserver"
)

var (
	endpoint string
	counter  atomic.Int64
)

// Main starts moto_server (test/motoserver), runs the tests and stops the
// server. Call it from TestMain:
// `func TestMain(m *testing.M) { os.Exit(dynamotest.Main(m)) }`.
func Main(m *testing.M) int {
	srv, err := motoserver.StartSerialized(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dynamotest: %v\n", err)
		return 1
	}
	endpoint = srv.URL()
	code := m.Run()
	srv.Close()
	return code
}

// Endpoint is the running moto_server's URL.
func Endpoint() string { return endpoint }

// Client returns a DynamoDB client for the running moto_server.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	if endpoint == "" {
		t.Fatal("dynamotest: moto_server not started; call dynamotest.Main from TestMain")
	}
	return ClientAt(endpoint)
}

// ClientAt returns a DynamoDB client for url (moto_server, or a fault
// proxy in front of it) with the test credentials.
func ClientAt(url string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	})
}

// Tables creates a fresh set of the control plane's tables (store.TableSchemas)
// under a unique prefix and returns their names.
func Tables(t testing.TB) store.Tables {
	t.Helper()
	c := Client(t)
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	prefix := fmt.Sprintf("t%d-%s-", counter.Add(1), name)
	tables := store.TablesWithPrefix(prefix)
	ctx := context.Background()
	for _, in := range store.TableSchemas(tables) {
		if _, err := c.CreateTable(ctx, &in); err != nil {
			// The prefix is unique to this call, so an existing table is
			// ours: the SDK retried a create whose answer came late (a
			// loaded CI machine), and moto had already made it.
			var inUse *types.ResourceInUseException
			if errors.As(err, &inUse) {
				continue
			}
			t.Fatalf("dynamotest: create table %s: %v", aws.ToString(in.TableName), err)
		}
	}
	return tables
}
