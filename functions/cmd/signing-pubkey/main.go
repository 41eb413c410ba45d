// Command signing-pubkey is a CloudFormation custom resource (Lambda-backed,
// arm64 provided.al2023 like every keyferry function) that reads the public key
// of the control-plane signing key with kms:GetPublicKey, so the stack can
// output it for agents to pin.
package main

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

type kmsAPI interface {
	GetPublicKey(context.Context, *kms.GetPublicKeyInput, ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

var _ kmsAPI = (*kms.Client)(nil)

func handler(client kmsAPI) cfn.CustomResourceFunction {
	return func(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
		keyID, _ := ev.ResourceProperties["KeyId"].(string)
		if ev.RequestType == cfn.RequestDelete {
			return ev.PhysicalResourceID, nil, nil
		}
		if keyID == "" {
			return "", nil, fmt.Errorf("signing-pubkey: property KeyId is required")
		}
		out, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &keyID})
		if err != nil {
			return "", nil, fmt.Errorf("signing-pubkey: kms GetPublicKey %s: %w", keyID, err)
		}
		return keyID, map[string]any{"PublicKey": base64.StdEncoding.EncodeToString(out.PublicKey)}, nil
	}
}

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		panic(err)
	}
	lambda.Start(cfn.LambdaWrap(handler(kms.NewFromConfig(cfg))))
}
