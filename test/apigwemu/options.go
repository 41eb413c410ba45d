package apigwemu

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Service limits of API Gateway WebSocket APIs (not adjustable in AWS).
const (
	// MaxFrameSize is the largest client frame payload accepted (32 KB).
	MaxFrameSize = 32 * 1024
	// MaxMessageSize is the largest reassembled message accepted (128 KB),
	// also the largest PostToConnection payload.
	MaxMessageSize = 128 * 1024
	// DefaultIdleTimeout is the idle connection timeout (10 minutes).
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxAge is the maximum connection duration (2 hours).
	DefaultMaxAge = 2 * time.Hour
	// DefaultIntegrationTimeout is the integration timeout (29 seconds).
	DefaultIntegrationTimeout = 29 * time.Second
	// DefaultPresignWindow is how long a presign without X-Amz-Expires stays
	// valid after X-Amz-Date (the SigV4 clock-skew window).
	DefaultPresignWindow = 15 * time.Minute
	// MaxPresignExpires is the largest X-Amz-Expires SigV4 allows (7 days).
	MaxPresignExpires = 7 * 24 * time.Hour
)

// Route keys API Gateway reserves.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// Handler is a Lambda proxy integration: it receives the event API Gateway
// would send and returns the Lambda's response.
type Handler func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// Credential is one static IAM identity the emulator accepts on $connect.
type Credential struct {
	// SecretAccessKey signs the presigned URL.
	SecretAccessKey string
	// SessionToken, when set, must equal the presign's X-Amz-Security-Token.
	SessionToken string
	// PrincipalARN is the IAM principal, e.g.
	// arn:aws:iam::111122223333:user/agent or
	// arn:aws:sts::111122223333:assumed-role/agent/session.
	PrincipalARN string
	// CallerID is the caller's unique id as API Gateway reports it
	// (identity.caller/identity.user, e.g. "AIDAEXAMPLE" or
	// "AROAEXAMPLE:session"); derived from PrincipalARN when empty.
	CallerID string
}

// Options configure an Emulator. The zero value of each field means the
// real service's behaviour (or a neutral default).
type Options struct {
	// Stage is the stage name, the first path segment (default "test").
	Stage string
	// APIID is the API id reported in events (default: random, 10 chars).
	APIID string
	// Region is the signing region presigns must use ("" accepts any).
	Region string
	// Credentials maps access key id to identity. With no credentials every
	// $connect is refused unless AllowUnauthenticated is set.
	Credentials map[string]Credential
	// Authorize, when set, is IAM: after a request's signature verifies it
	// is asked whether the signing access key may perform action
	// (execute-api:Invoke on $connect, execute-api:ManageConnections on
	// @connections) on resource (the execute-api ARN of the route or
	// connection); an error refuses the request as API Gateway does
	// (403). Account names the API's account in those ARNs.
	Authorize func(ctx context.Context, accessKey, action, resource string) error
	Account   string
	// AllowUnauthenticated switches $connect authorisation to NONE.
	AllowUnauthenticated bool
	// RefuseReplayedPresign refuses a presigned URL whose signature was
	// already used for a successful SigV4 check. The real API Gateway does
	// NOT do this (a presign is reusable until it expires); keyferry's
	// security suite wants it, so SandboxOptions turns it on.
	RefuseReplayedPresign bool
	// TLS, when set, serves wss:// and https:// (URL and ManagementURL
	// follow) with this configuration; nil serves ws:// and http://.
	TLS *tls.Config
	// ManagementCredentials, when non-nil, makes the @connections API
	// require a valid SigV4 Authorization header (service execute-api) by
	// one of these access keys, as the real endpoint requires IAM; other
	// requests get 403 ForbiddenException. Nil accepts any caller.
	ManagementCredentials map[string]Credential
	// IdleTimeout closes a connection with no client data message for this
	// long (default DefaultIdleTimeout). Pings do not count.
	IdleTimeout time.Duration
	// MaxAge closes a connection this long after it was accepted (default
	// DefaultMaxAge).
	MaxAge time.Duration
	// IntegrationTimeout bounds every handler call (default
	// DefaultIntegrationTimeout).
	IntegrationTimeout time.Duration
	// CloseGrace is how long the server waits for the client's close frame
	// after sending its own (default 2 s).
	CloseGrace time.Duration
	// Clock is the emulator's clock for presign validity and timestamps
	// (default time.Now). Idle and age timers run on real time.
	Clock func() time.Time
	// Logger receives JSON-able structured logs (default: discarded). No
	// message bodies are logged, only sizes.
	Logger *slog.Logger
	// RouteResponses sends a route handler's non-empty response body back to
	// the client, as API Gateway does only for routes with a route response
	// (two-way routes). Off by default: keyferry's stack configures none.
	RouteResponses bool
	// Fault, when set, is consulted for every client message and every
	// PostToConnection; see FaultAction. Test-only hook.
	Fault Fault
}

// SandboxOptions returns the options the keyferry sandbox and security
// suites use: the given credentials, replayed presigns refused, real limits.
func SandboxOptions(creds map[string]Credential) Options {
	return Options{
		Stage:                 "sandbox",
		Credentials:           creds,
		RefuseReplayedPresign: true,
	}
}

func (o Options) withDefaults() Options {
	if o.Stage == "" {
		o.Stage = "test"
	}
	if o.APIID == "" {
		o.APIID = randomAPIID()
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.IntegrationTimeout <= 0 {
		o.IntegrationTimeout = DefaultIntegrationTimeout
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = 2 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
