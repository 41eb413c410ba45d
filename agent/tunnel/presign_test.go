package tunnel

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestSigV4PresignExecuteAPI(t *testing.T) {
	p := SigV4Presigner{
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"),
		Region:      "eu-west-1",
		Now:         func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	for _, endpoint := range []string{"https://abc.execute-api.eu-west-1.amazonaws.com/prod", "wss://abc.execute-api.eu-west-1.amazonaws.com/prod"} {
		s, err := p.Presign(context.Background(), endpoint)
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Scheme != "wss" || u.Host != "abc.execute-api.eu-west-1.amazonaws.com" || u.Path != "/prod" {
			t.Fatalf("presigned URL %s", s)
		}
		checks := map[string]string{
			"X-Amz-Algorithm":      "AWS4-HMAC-SHA256",
			"X-Amz-Credential":     "AKIDEXAMPLE/20260102/eu-west-1/execute-api/aws4_request",
			"X-Amz-Date":           "20260102T030405Z",
			"X-Amz-Security-Token": "session-token",
			"X-Amz-SignedHeaders":  "host",
		}
		for k, v := range checks {
			if q.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, q.Get(k), v)
			}
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(q.Get("X-Amz-Signature")) {
			t.Errorf("signature %q", q.Get("X-Amz-Signature"))
		}
		if strings.Contains(s, "wJalrXUtnFEMI") {
			t.Fatal("secret key in URL")
		}
	}
}
