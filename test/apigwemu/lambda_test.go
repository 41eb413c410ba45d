package apigwemu

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestInvoker(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		err     error
		status  int
		wantErr bool
	}{
		{"proxy response", `{"statusCode":200,"body":"ok"}`, nil, 200, false},
		{"null", `null`, nil, 0, false},
		{"not a response", `[1]`, nil, 0, true},
		{"function error", ``, errors.New("boom"), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got events.APIGatewayWebsocketProxyRequest
			h := Invoker(func(ctx context.Context, payload []byte) ([]byte, error) {
				if err := json.Unmarshal(payload, &got); err != nil {
					t.Fatal(err)
				}
				return []byte(tc.answer), tc.err
			})
			resp, err := h(context.Background(), events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: "hello", ConnectionID: "c1"}})
			if (err != nil) != tc.wantErr || resp.StatusCode != tc.status {
				t.Fatalf("got %+v, %v", resp, err)
			}
			if got.RequestContext.RouteKey != "hello" || got.RequestContext.ConnectionID != "c1" {
				t.Fatalf("event not passed: %+v", got.RequestContext)
			}
		})
	}
}
