package lambdaemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/keyferry/keyferry/test/lambdaemu"
)

type echoReq struct {
	Name string `json:"name"`
	Fail bool   `json:"fail"`
}

type echoResp struct {
	Hello     string `json:"hello"`
	RequestID string `json:"request_id"`
}

type customError struct{ msg string }

func (e *customError) Error() string { return e.msg }

func start(t *testing.T) (*lambdaemu.Server, *lambda.Client, *atomic.Int32) {
	t.Helper()
	s := lambdaemu.New(lambdaemu.Options{})
	var events atomic.Int32
	s.Register("echo", lambdaemu.Typed(func(ctx context.Context, r echoReq) (echoResp, error) {
		if r.Fail {
			return echoResp{}, fmt.Errorf("echo: %w", &customError{"asked to fail"})
		}
		lc, _ := lambdacontext.FromContext(ctx)
		return echoResp{Hello: r.Name, RequestID: lc.AwsRequestID}, nil
	}))
	s.Register("count", func(ctx context.Context, _ json.RawMessage) (any, error) {
		events.Add(1)
		return nil, nil
	})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := lambda.NewFromConfig(aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}, nil
		}),
		BaseEndpoint: aws.String(s.URL()),
	})
	return s, c, &events
}

func TestInvokeWireShapesWithSDK(t *testing.T) {
	s, c, events := start(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		function   string
		typ        types.InvocationType
		payload    string
		wantStatus int32
		wantFnErr  string
		wantBody   string // substring
		wantAPIErr string // error code
	}{
		{"request-response", "echo", types.InvocationTypeRequestResponse, `{"name":"kf"}`, 200, "", `"hello":"kf"`, ""},
		{"default type is request-response", "echo", "", `{"name":"x"}`, 200, "", `"hello":"x"`, ""},
		{"full ARN with qualifier", "arn:aws:lambda:us-east-1:111122223333:function:echo:$LATEST", "", `{"name":"arn"}`, 200, "", `"hello":"arn"`, ""},
		{"handler error", "echo", types.InvocationTypeRequestResponse, `{"fail":true}`, 200, "Unhandled", `"errorMessage":"echo: asked to fail","errorType":"wrapError"`, ""},
		{"payload not matching the type", "echo", "", `[1,2]`, 200, "Unhandled", `"errorType":"UnmarshalTypeError"`, ""},
		{"event", "count", types.InvocationTypeEvent, `{}`, 202, "", "", ""},
		{"dry run", "echo", types.InvocationTypeDryRun, `{}`, 204, "", "", ""},
		{"unknown function", "nope", "", `{}`, 0, "", "", "ResourceNotFoundException"},
		{"invalid JSON", "echo", "", `{`, 0, "", "", "InvalidRequestContentException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(tc.function), InvocationType: tc.typ, Payload: []byte(tc.payload)})
			if tc.wantAPIErr != "" {
				if err == nil {
					t.Fatalf("want %s, got success", tc.wantAPIErr)
				}
				if tc.wantAPIErr == "ResourceNotFoundException" {
					var nf *types.ResourceNotFoundException
					if !errors.As(err, &nf) || !strings.Contains(nf.ErrorMessage(), "function:nope") {
						t.Fatalf("want typed ResourceNotFoundException naming the function, got %T %v", err, err)
					}
				}
				if !strings.Contains(err.Error(), tc.wantAPIErr) {
					t.Fatalf("error %v does not name %s", err, tc.wantAPIErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", out.StatusCode, tc.wantStatus)
			}
			if got := aws.ToString(out.FunctionError); got != tc.wantFnErr {
				t.Errorf("FunctionError %q, want %q", got, tc.wantFnErr)
			}
			if !strings.Contains(string(out.Payload), tc.wantBody) {
				t.Errorf("payload %s lacks %s", out.Payload, tc.wantBody)
			}
			if tc.wantStatus == 200 && tc.wantFnErr == "" && aws.ToString(out.ExecutedVersion) != "$LATEST" {
				t.Errorf("ExecutedVersion %q", aws.ToString(out.ExecutedVersion))
			}
		})
	}
	s.Wait()
	if n := events.Load(); n != 1 {
		t.Errorf("Event invocation ran the handler %d times, want 1", n)
	}
}

func TestRequestIDInLambdaContext(t *testing.T) {
	_, c, _ := start(t)
	seen := map[string]bool{}
	for range 3 {
		out, err := c.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		var r echoResp
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.RequestID) != 36 || seen[r.RequestID] {
			t.Fatalf("request id %q missing or repeated", r.RequestID)
		}
		seen[r.RequestID] = true
	}
}

func TestRawHTTPRefusals(t *testing.T) {
	s, _, _ := start(t)
	tests := []struct {
		name, method, path, auth, invType string
		want                              int
		wantCode                          string
	}{
		{"no signature", "POST", "/2015-03-31/functions/echo/invocations", "", "", 403, "MissingAuthenticationTokenException"},
		{"other operation", "GET", "/2015-03-31/functions/echo", "AWS4-HMAC-SHA256 x", "", 404, "UnknownOperationException"},
		{"bad invocation type", "POST", "/2015-03-31/functions/echo/invocations", "AWS4-HMAC-SHA256 x", "Later", 400, "InvalidParameterValueException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.URL()+tc.path, strings.NewReader(`{}`))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.invType != "" {
				req.Header.Set("X-Amz-Invocation-Type", tc.invType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || resp.Header.Get("X-Amzn-ErrorType") != tc.wantCode {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), tc.want, tc.wantCode)
			}
		})
	}
}

// TestAuthorizeAnswersAccessDenied: the SDK sees IAM's refusal as Lambda
// sends it (403 AccessDeniedException with the message), the function does
// not run, and the decision gets the caller's access key and the ARN.
func TestAuthorizeAnswersAccessDenied(t *testing.T) {
	var ran atomic.Int32
	var gotKey, gotAction, gotResource string
	s := lambdaemu.New(lambdaemu.Options{Authorize: func(_ context.Context, key, action, resource string) error {
		gotKey, gotAction, gotResource = key, action, resource
		if strings.HasSuffix(resource, ":function:open") {
			return nil
		}
		return errors.New("User: arn:aws:iam::111122223333:user/op is not authorized to perform: lambda:InvokeFunction on resource: " + resource)
	}})
	for _, n := range []string{"open", "closed"} {
		s.Register(n, func(context.Context, json.RawMessage) (any, error) { ran.Add(1); return "ok", nil })
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := lambda.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(s.URL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDOPERATOR", SecretAccessKey: "secret"}, nil
		})})
	ctx := context.Background()
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("open")}); err != nil {
		t.Fatalf("allowed invoke: %v", err)
	}
	if gotKey != "AKIDOPERATOR" || gotAction != "lambda:InvokeFunction" || gotResource != "arn:aws:lambda:us-east-1:111122223333:function:open" {
		t.Fatalf("decision asked for key %q action %q resource %q", gotKey, gotAction, gotResource)
	}
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("closed")})
	var ad interface{ ErrorCode() string }
	if !errors.As(err, &ad) || ad.ErrorCode() != "AccessDeniedException" || !strings.Contains(err.Error(), "lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:111122223333:function:closed") {
		t.Fatalf("denied invoke: %v, want AccessDeniedException naming the action and ARN", err)
	}
	if n := ran.Load(); n != 1 {
		t.Fatalf("functions ran %d times, want 1 (the denied one must not run)", n)
	}
}
