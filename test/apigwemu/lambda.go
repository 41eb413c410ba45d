package apigwemu

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// Invoker adapts a Lambda function invoked by payload (e.g. a function of
// test/lambdarun, its real bootstrap behind the Runtime Interface
// Emulator) to a route's proxy integration: the event goes as JSON, the
// function's JSON result is the proxy response. The integration timeout
// (Options.IntegrationTimeout, 29 s) applies as for any handler; invoke
// should keep the function running past it (Lambda does not stop an
// instance when API Gateway gives up).
func Invoker(invoke func(ctx context.Context, payload []byte) ([]byte, error)) Handler {
	return func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		var resp events.APIGatewayProxyResponse
		b, err := json.Marshal(req)
		if err != nil {
			return resp, fmt.Errorf("apigwemu: marshal event: %w", err)
		}
		out, err := invoke(ctx, b)
		if err != nil {
			return resp, err
		}
		if len(out) > 0 && string(out) != "null" {
			if err := json.Unmarshal(out, &resp); err != nil {
				return resp, fmt.Errorf("apigwemu: integration answered no proxy response: %w", err)
			}
		}
		return resp, nil
	}
}
