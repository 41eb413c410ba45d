package apigwemu

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Reasons a $connect presign is refused; test with errors.Is.
var (
	ErrNoSignature        = errors.New("presign: no X-Amz-Signature")
	ErrMalformedPresign   = errors.New("presign: malformed")
	ErrUnknownAccessKey   = errors.New("presign: unknown access key")
	ErrSignatureMismatch  = errors.New("presign: signature does not match")
	ErrPresignExpired     = errors.New("presign: expired")
	ErrPresignNotYetValid = errors.New("presign: X-Amz-Date is in the future")
	ErrPresignReplayed    = errors.New("presign: signature already used")
)

const (
	signingService   = "execute-api"
	signingAlgorithm = "AWS4-HMAC-SHA256"
	amzDateFormat    = "20060102T150405Z"
	// maxClockSkew is how far in the future X-Amz-Date may be.
	maxClockSkew = 5 * time.Minute
	// emptyPayloadHash is hex(sha256("")), what a GET presign signs.
	emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	unsignedPayload  = "UNSIGNED-PAYLOAD"
)

// signingQueryKeys are the query parameters the signer itself adds.
var signingQueryKeys = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Security-Token", "X-Amz-Signature"}

// principal is the identity a verified presign belongs to.
type principal struct {
	AccessKey string
	Cred      Credential
}

// presignVerifier checks query-string SigV4 on $connect requests.
type presignVerifier struct {
	creds       map[string]Credential
	region      string
	now         func() time.Time
	refuseReuse bool
	signer      *v4.Signer

	mu   sync.Mutex
	seen map[string]time.Time // signature -> when it stops being valid
}

func newPresignVerifier(o Options) *presignVerifier {
	return &presignVerifier{
		creds:       o.Credentials,
		region:      o.Region,
		now:         o.Clock,
		refuseReuse: o.RefuseReplayedPresign,
		signer:      v4.NewSigner(),
		seen:        map[string]time.Time{},
	}
}

// verify recomputes the presign of r, which arrived as ws://host/path?query,
// over https://host/path?query (the form the client presigned), and checks
// its validity window and, optionally, that it was not used before.
func (v *presignVerifier) verify(ctx context.Context, r *http.Request) (principal, error) {
	q := r.URL.Query()
	sig := q.Get("X-Amz-Signature")
	if sig == "" {
		return principal{}, ErrNoSignature
	}
	if alg := q.Get("X-Amz-Algorithm"); alg != signingAlgorithm {
		return principal{}, fmt.Errorf("%w: X-Amz-Algorithm %q", ErrMalformedPresign, alg)
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return principal{}, fmt.Errorf("%w: X-Amz-Credential", ErrMalformedPresign)
	}
	accessKey, scopeDate, region, service := scope[0], scope[1], scope[2], scope[3]
	if service != signingService {
		return principal{}, fmt.Errorf("%w: service %q, want %q", ErrMalformedPresign, service, signingService)
	}
	if v.region != "" && region != v.region {
		return principal{}, fmt.Errorf("%w: region %q, want %q", ErrMalformedPresign, region, v.region)
	}
	signedAt, err := time.Parse(amzDateFormat, q.Get("X-Amz-Date"))
	if err != nil {
		return principal{}, fmt.Errorf("%w: X-Amz-Date: %w", ErrMalformedPresign, err)
	}
	if signedAt.Format("20060102") != scopeDate {
		return principal{}, fmt.Errorf("%w: credential scope date %q differs from X-Amz-Date", ErrMalformedPresign, scopeDate)
	}
	window := DefaultPresignWindow
	if e := q.Get("X-Amz-Expires"); e != "" {
		secs, err := strconv.ParseInt(e, 10, 64)
		if err != nil || secs <= 0 || time.Duration(secs)*time.Second > MaxPresignExpires {
			return principal{}, fmt.Errorf("%w: X-Amz-Expires %q", ErrMalformedPresign, e)
		}
		window = time.Duration(secs) * time.Second
	}
	signedHeaders := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	if !slices.Contains(signedHeaders, "host") {
		return principal{}, fmt.Errorf("%w: host is not a signed header", ErrMalformedPresign)
	}
	cred, ok := v.creds[accessKey]
	if !ok {
		return principal{}, fmt.Errorf("%w: %s", ErrUnknownAccessKey, accessKey)
	}
	if cred.SessionToken != "" && subtle.ConstantTimeCompare([]byte(cred.SessionToken), []byte(q.Get("X-Amz-Security-Token"))) != 1 {
		return principal{}, fmt.Errorf("%w: session token", ErrSignatureMismatch)
	}

	// Rebuild the request the client presigned: https, same Host, path and
	// query without the signer's own parameters, the signed headers only.
	unsigned := url.Values{}
	for k, vs := range q {
		if !slices.Contains(signingQueryKeys, k) {
			unsigned[k] = vs
		}
	}
	u := url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: unsigned.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return principal{}, fmt.Errorf("%w: rebuild request: %w", ErrMalformedPresign, err)
	}
	for _, h := range signedHeaders {
		if h == "host" {
			continue
		}
		vals := r.Header.Values(h)
		if len(vals) == 0 {
			return principal{}, fmt.Errorf("%w: signed header %q missing", ErrSignatureMismatch, h)
		}
		req.Header[http.CanonicalHeaderKey(h)] = vals
	}
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: cred.SecretAccessKey, SessionToken: q.Get("X-Amz-Security-Token")}
	matched := false
	for _, payloadHash := range []string{emptyPayloadHash, unsignedPayload} {
		signed, _, err := v.signer.PresignHTTP(ctx, creds, req, payloadHash, signingService, region, signedAt)
		if err != nil {
			return principal{}, fmt.Errorf("presign: sign: %w", err)
		}
		su, err := url.Parse(signed)
		if err != nil {
			return principal{}, fmt.Errorf("presign: parse signed url: %w", err)
		}
		sq := su.Query()
		if sq.Get("X-Amz-SignedHeaders") == q.Get("X-Amz-SignedHeaders") &&
			subtle.ConstantTimeCompare([]byte(sq.Get("X-Amz-Signature")), []byte(sig)) == 1 {
			matched = true
			break
		}
	}
	if !matched {
		return principal{}, ErrSignatureMismatch
	}

	now := v.now()
	if now.Before(signedAt.Add(-maxClockSkew)) {
		return principal{}, fmt.Errorf("%w: signed at %s, now %s", ErrPresignNotYetValid, signedAt.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	validUntil := signedAt.Add(window)
	if !now.Before(validUntil) {
		return principal{}, fmt.Errorf("%w: valid until %s, now %s", ErrPresignExpired, validUntil.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if v.refuseReuse {
		if err := v.remember(sig, validUntil, now); err != nil {
			return principal{}, err
		}
	}
	return principal{AccessKey: accessKey, Cred: cred}, nil
}

// remember records sig until validUntil, refusing one already recorded.
func (v *presignVerifier) remember(sig string, validUntil, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for s, until := range v.seen {
		if !now.Before(until) {
			delete(v.seen, s)
		}
	}
	if _, dup := v.seen[sig]; dup {
		return ErrPresignReplayed
	}
	v.seen[sig] = validUntil
	return nil
}

// PresignURL presigns the https form of a ws/wss stage URL the way the
// keyferry agent does (aws-sdk-go-v2 v4 signer, service execute-api,
// GET, empty payload) and returns it with the original scheme restored.
// Tests and the sandbox use it to dial the emulator.
func PresignURL(ctx context.Context, wsURL string, creds aws.Credentials, region string, expires time.Duration, signingTime time.Time) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", fmt.Errorf("presign: parse %q: %w", wsURL, err)
	}
	scheme := u.Scheme
	u.Scheme = "https"
	if expires > 0 {
		q := u.Query()
		q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("presign: request: %w", err)
	}
	h := sha256.Sum256(nil)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, hex.EncodeToString(h[:]), signingService, region, signingTime)
	if err != nil {
		return "", fmt.Errorf("presign: sign: %w", err)
	}
	su, err := url.Parse(signed)
	if err != nil {
		return "", fmt.Errorf("presign: parse signed url: %w", err)
	}
	su.Scheme = scheme
	return su.String(), nil
}
