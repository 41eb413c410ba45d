package apigwemu

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// ErrManagementUnsigned is an @connections request without a valid SigV4
// Authorization header from one of Options.ManagementCredentials.
var ErrManagementUnsigned = errors.New("@connections: request not signed by a known principal")

// verifyManagement checks the header SigV4 (service execute-api) of an
// @connections request by recomputing it with the aws-sdk-go-v2 signer,
// and returns the signing access key.
func verifyManagement(r *http.Request, body []byte, creds map[string]Credential, region string) (string, error) {
	auth := r.Header.Get("Authorization")
	alg, rest, ok := strings.Cut(auth, " ")
	if !ok || alg != signingAlgorithm {
		return "", fmt.Errorf("%w: no %s Authorization", ErrManagementUnsigned, signingAlgorithm)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[3] != signingService || scope[4] != "aws4_request" {
		return "", fmt.Errorf("%w: credential scope", ErrManagementUnsigned)
	}
	if region != "" && scope[2] != region {
		return "", fmt.Errorf("%w: region %q", ErrManagementUnsigned, scope[2])
	}
	cred, ok := creds[scope[0]]
	if !ok {
		return "", fmt.Errorf("%w: unknown access key %s", ErrManagementUnsigned, scope[0])
	}
	at, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", fmt.Errorf("%w: X-Amz-Date: %w", ErrManagementUnsigned, err)
	}
	u := "https://" + r.Host + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%w: rebuild: %w", ErrManagementUnsigned, err)
	}
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		switch h {
		case "host", "content-length":
			continue
		}
		req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	sum := sha256.Sum256(body)
	c := aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: cred.SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), c, req, hex.EncodeToString(sum[:]), signingService, scope[2], at); err != nil {
		return "", fmt.Errorf("%w: sign: %w", ErrManagementUnsigned, err)
	}
	if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(auth)) != 1 {
		return "", fmt.Errorf("%w: signature does not match", ErrManagementUnsigned)
	}
	return scope[0], nil
}
