package awsconfig

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/shared/groups"
)

func TestRetryerSkipsQuotaAndThrottleButRetriesServerErrors(t *testing.T) {
	cases := []struct {
		errType  string
		status   int
		attempts int32
	}{
		{"LimitExceededException", 400, 1},
		{"ThrottlingException", 400, 1}, // left to the pacer
		{"KMSInternalException", 500, 3},
	}
	for _, tc := range cases {
		t.Run(tc.errType, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"__type":"` + tc.errType + `","message":"test"}`))
			}))
			defer srv.Close()
			c := kms.New(kms.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Retryer: NewRetryer(),
				Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
				}),
			})
			_, err := c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("k")})
			if err == nil || !strings.Contains(err.Error(), tc.errType) {
				t.Fatalf("err = %v", err)
			}
			if got := n.Load(); got != tc.attempts {
				t.Fatalf("%d attempts, want %d", got, tc.attempts)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := FromEnv(env(map[string]string{EnvTablePrefix: "kf-", EnvJobsTable: "custom-jobs", EnvWSEndpoint: "https://x/prod", EnvRotateFunctionARN: "arn:aws:lambda:us-east-1:111122223333:function:keyferry-rotate"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Tables.Jobs != "custom-jobs" || s.Tables.Generations != "kf-generations" || s.RequestTTL != 0 || s.JobTimeout != 0 || s.MaxAttempts != 0 || s.SigningKeyID != groups.DefaultSigningKeyAlias || s.QuotaFraction != pacer.DefaultFraction ||
		s.RotateFunctionARN != "arn:aws:lambda:us-east-1:111122223333:function:keyferry-rotate" {
		t.Fatalf("settings %+v", s)
	}
	bad := []map[string]string{
		{EnvRequestTTL: "forever"},
		{EnvRequestTTL: "1h"},
		{EnvQuotaScale: "-1"},
	}
	for _, m := range bad {
		if _, err := FromEnv(env(m)); err == nil {
			t.Fatalf("%v accepted", m)
		}
	}
	if err := errors.Unwrap(nil); err != nil {
		t.Fatal(err)
	}
}
