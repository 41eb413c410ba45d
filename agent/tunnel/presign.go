package tunnel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Presigner turns the configured endpoint into the URL to dial.
type Presigner interface {
	Presign(ctx context.Context, endpoint string) (string, error)
}

// emptyPayloadHash is hex SHA-256 of the empty body of the $connect GET.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// SigV4Presigner presigns the https stage URL with SigV4 for service
// "execute-api" (API Gateway AWS_IAM authorization on $connect) and switches
// the scheme to wss. Credentials come from any aws.CredentialsProvider, in
// the daemon the SDK's default chain (environment, shared profile, IAM Roles
// Anywhere credential_process).
type SigV4Presigner struct {
	Credentials aws.CredentialsProvider
	Region      string
	// Expires is the presigned URL's validity (X-Amz-Expires); default 60 s,
	// the URL is used at once and presigned again for every dial.
	Expires time.Duration
	// Now is the signing clock (time.Now if nil).
	Now func() time.Time
	// Params are signed query parameters sent on $connect (the control
	// plane's connect function reads agent_id and hsm_pool from them); being
	// inside the signature, they cannot be altered on the way.
	Params url.Values
}

var _ Presigner = SigV4Presigner{}

// Presign implements Presigner.
func (p SigV4Presigner) Presign(ctx context.Context, endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("tunnel: endpoint: %w", err)
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	case "ws":
		u.Scheme = "http"
	}
	exp := p.Expires
	if exp <= 0 {
		exp = time.Minute
	}
	q := u.Query()
	for k, vs := range p.Params {
		q[k] = append([]string(nil), vs...)
	}
	// A fresh nonce makes every presigned URL unique, so two dials within
	// the same second never reuse a signature (replay refusal stays exact).
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("tunnel: presign nonce: %w", err)
	}
	q.Set("kf_nonce", hex.EncodeToString(nonce))
	q.Set("X-Amz-Expires", strconv.Itoa(int(exp/time.Second)))
	u.RawQuery = q.Encode()
	creds, err := p.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("tunnel: retrieve AWS credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("tunnel: presign: %w", err)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, emptyPayloadHash, "execute-api", p.Region, now().UTC())
	if err != nil {
		return "", fmt.Errorf("tunnel: SigV4 presign: %w", err)
	}
	su, err := url.Parse(signed)
	if err != nil {
		return "", fmt.Errorf("tunnel: presigned URL: %w", err)
	}
	switch su.Scheme {
	case "https":
		su.Scheme = "wss"
	case "http":
		su.Scheme = "ws"
	}
	return su.String(), nil
}
