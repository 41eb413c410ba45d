package apigwemu

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
)

func TestManagementSigV4(t *testing.T) {
	ctx := context.Background()
	emu := startEmu(t, func(o *Options) {
		o.ManagementCredentials = map[string]Credential{"AKIDFUNCTIONS": {SecretAccessKey: "functions-secret", PrincipalARN: "arn:aws:sts::111122223333:assumed-role/rotate/fn"}}
	})
	connect := newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	mustDial(t, emu)
	id := connect.next(t).RequestContext.ConnectionID
	client := func(akid, secret, region string) *apigatewaymanagementapi.Client {
		return apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
			Region: region, BaseEndpoint: aws.String(emu.ManagementURL()),
			Credentials: credentials.NewStaticCredentialsProvider(akid, secret, ""),
		})
	}
	tests := []struct {
		name      string
		api       *apigatewaymanagementapi.Client
		forbidden bool
	}{
		{"signed by known key", client("AKIDFUNCTIONS", "functions-secret", testRegion), false},
		{"wrong secret", client("AKIDFUNCTIONS", "guess", testRegion), true},
		{"unknown key", client("AKIDROGUE", "functions-secret", testRegion), true},
		{"wrong region", client("AKIDFUNCTIONS", "functions-secret", "us-east-1"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, postErr := tc.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: []byte(`{"m":1}`)})
			_, getErr := tc.api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
			for _, err := range []error{postErr, getErr} {
				var forbidden *types.ForbiddenException
				if errors.As(err, &forbidden) != tc.forbidden || (!tc.forbidden && err != nil) {
					t.Fatalf("err = %v, want forbidden=%v", err, tc.forbidden)
				}
			}
		})
	}
	// A refused DELETE leaves the connection alone.
	if _, err := client("AKIDROGUE", "x", testRegion).DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(id)}); err == nil {
		t.Fatal("unsigned DeleteConnection accepted")
	}
	if len(emu.Connections()) != 1 {
		t.Fatal("refused DeleteConnection closed the connection")
	}
}
