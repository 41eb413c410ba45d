package dynamotest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
)

// CloudWatch returns a CloudWatch client for the running moto_server (the
// same server as Client: moto serves every service on one port).
//
// The SDK (service/cloudwatch >= v1.53.0) speaks Smithy RPC v2 CBOR by
// default, which moto 5.2.1 does not route (404 on
// /service/GraniteServiceVersion20100801/operation/...); CloudWatch itself
// still serves the AWS Query protocol, so the test client selects it with
// Options.Protocol. Production clients keep the SDK's default.
func CloudWatch(t testing.TB) *cloudwatch.Client {
	t.Helper()
	if endpoint == "" {
		t.Fatal("dynamotest: moto_server not started; call dynamotest.Main from TestMain")
	}
	return cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	}, func(o *cloudwatch.Options) {
		// New sets the CBOR protocol unconditionally; only an option
		// function runs after it.
		o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
	})
}
