// Package awsconfig builds the control plane's AWS clients and settings from
// the Lambda environment. All clients come from config.LoadDefaultConfig, so
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> point them at emulators or
// any compatible endpoint. The retryer never retries LimitExceededException
// (quota exhaustion does not heal in milliseconds) and leaves KMS
// ThrottlingException to the pacer, which treats it as back-pressure.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Environment variable names read by Load.
const (
	EnvTablePrefix    = "KEYFERRY_TABLE_PREFIX" // default "keyferry-"
	EnvJobsTable      = "KEYFERRY_JOBS_TABLE"   // overrides prefix+"jobs"
	EnvGenerationsTbl = "KEYFERRY_GENERATIONS_TABLE"
	EnvConnectionsTbl = "KEYFERRY_CONNECTIONS_TABLE"
	EnvTriggersTable  = "KEYFERRY_TRIGGERS_TABLE"
	EnvGroupsTable    = "KEYFERRY_GROUPS_TABLE"
	EnvPacingTable    = "KEYFERRY_PACING_TABLE"   // the account-wide KMS pacer's ledger
	EnvGroupsFile     = "KEYFERRY_GROUPS_FILE"    // default key-groups.yaml next to bootstrap
	EnvWSEndpoint     = "KEYFERRY_WS_ENDPOINT"    // https://{api}.execute-api.{region}.amazonaws.com/{stage}
	EnvSigningKey     = "KEYFERRY_SIGNING_KEY_ID" // key id/ARN/alias of the control-plane signing key
	EnvRequestTTL     = "KEYFERRY_REQUEST_TTL"    // Go duration, default engine.DefaultRequestTTL
	EnvJobTimeout     = "KEYFERRY_JOB_TIMEOUT"    // Go duration, default engine.DefaultJobTimeout
	EnvQuotaFraction  = "KEYFERRY_QUOTA_FRACTION" // default pacer.DefaultFraction
	EnvQuotaScale     = "KEYFERRY_QUOTA_SCALE"    // default 1 (AWS quotas)
	EnvMaxAttempts    = "KEYFERRY_MAX_ATTEMPTS"   // default engine.DefaultMaxAttempts
	// EnvRotateFunctionARN is the rotate function's ARN: the action of the
	// alarms the engine keeps on each group's current key (unset: the
	// engine manages no alarms).
	EnvRotateFunctionARN = "KEYFERRY_ROTATE_FUNCTION_ARN"
	// EnvAssumeRoleARN, when set, is a role in the target account: the
	// engine's KMS calls on the groups' keys use it (the control-plane
	// signing key stays under the function's own role).
	EnvAssumeRoleARN = "KEYFERRY_ASSUME_ROLE_ARN"
	// EnvJobQueueURL is the SQS queue the worker function consumes: when
	// set, routes and triggers hand jobs on to it instead of running them
	// inline (functions/jobqueue).
	EnvJobQueueURL = "KEYFERRY_JOB_QUEUE_URL"
)

// Settings are the control plane's environment settings.
type Settings struct {
	Tables       store.Tables
	GroupsFile   string
	WSEndpoint   string
	SigningKeyID string
	// RequestTTL, JobTimeout and MaxAttempts are zero when their variable
	// is unset: the engine's defaults apply (written once, in engine).
	RequestTTL    time.Duration
	JobTimeout    time.Duration
	QuotaFraction float64
	QuotaScale    float64
	MaxAttempts   int
	// RotateFunctionARN is the action of engine-managed alarms.
	RotateFunctionARN string
	// AssumeRoleARN is the target-account role for KMS key operations.
	AssumeRoleARN string
	// JobQueueURL is the worker's job queue (empty: jobs run inline).
	JobQueueURL string
}

// FromEnv reads Settings from getenv (os.Getenv in mains).
func FromEnv(getenv func(string) string) (Settings, error) {
	var errs []error
	or := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	prefix := or(EnvTablePrefix, "keyferry-")
	t := store.TablesWithPrefix(prefix)
	s := Settings{
		Tables: store.Tables{
			Jobs: or(EnvJobsTable, t.Jobs), Generations: or(EnvGenerationsTbl, t.Generations),
			Connections: or(EnvConnectionsTbl, t.Connections), Triggers: or(EnvTriggersTable, t.Triggers),
			Groups: or(EnvGroupsTable, t.Groups), Pacing: or(EnvPacingTable, t.Pacing),
		},
		GroupsFile:   or(EnvGroupsFile, defaultGroupsFile()),
		WSEndpoint:   getenv(EnvWSEndpoint),
		SigningKeyID: or(EnvSigningKey, groups.DefaultSigningKeyAlias),

		RotateFunctionARN: getenv(EnvRotateFunctionARN),
		JobQueueURL:       getenv(EnvJobQueueURL),
		AssumeRoleARN:     getenv(EnvAssumeRoleARN),
	}
	dur := func(k string, def time.Duration) time.Duration {
		v := getenv(k)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive Go duration", k, v))
			return def
		}
		return d
	}
	num := func(k string, def float64) float64 {
		v := getenv(k)
		if v == "" {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive number", k, v))
			return def
		}
		return f
	}
	s.RequestTTL = dur(EnvRequestTTL, 0)
	s.JobTimeout = dur(EnvJobTimeout, 0)
	s.QuotaFraction = num(EnvQuotaFraction, pacer.DefaultFraction)
	s.QuotaScale = num(EnvQuotaScale, 1)
	s.MaxAttempts = int(num(EnvMaxAttempts, 0))
	if s.RequestTTL > protocol.MaxRequestLifetime {
		errs = append(errs, fmt.Errorf("%s: %s exceeds the protocol's %s wrap_request lifetime", EnvRequestTTL, s.RequestTTL, protocol.MaxRequestLifetime))
	}
	return s, errors.Join(errs...)
}

func defaultGroupsFile() string {
	if exe, err := os.Executable(); err == nil {
		return dirOf(exe) + "/key-groups.yaml"
	}
	return "key-groups.yaml"
}

func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "."
}

// noRetryCodes are error codes the SDK must not retry: quota exhaustion
// (LimitExceededException) and KMS throttling (handled by the pacer).
var noRetryCodes = map[string]bool{"LimitExceededException": true, "ThrottlingException": true}

// Retryable reports the retry decision keyferry overrides, or
// aws.UnknownTernary to defer to the SDK defaults.
func Retryable(err error) aws.Ternary {
	var ae smithy.APIError
	if errors.As(err, &ae) && noRetryCodes[ae.ErrorCode()] {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// NewRetryer is the standard retryer with Retryable in front.
func NewRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(Retryable)}, o.Retryables...)
	})
}

// Clients are the AWS clients of the control plane.
type Clients struct {
	// KMS works on the groups' keys (under AssumeRoleARN when set).
	KMS *kms.Client
	// SignerKMS signs wrap_requests with the control-plane key, always
	// under the function's own credentials.
	SignerKMS   *kms.Client
	DynamoDB    *dynamodb.Client
	Connections *apigatewaymanagementapi.Client
	CloudWatch  *cloudwatch.Client
	SQS         *sqs.Client

	// kmsConfig is KMS's configuration (credentials included), from which
	// KMSIn makes the clients of other Regions (regions.go).
	kmsConfig aws.Config
	regional  regionalKMS
}

// Load builds the clients with config.LoadDefaultConfig and NewRetryer.
// Connections is nil when s.WSEndpoint is empty.
func Load(ctx context.Context, s Settings) (*Clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(NewRetryer))
	if err != nil {
		return nil, fmt.Errorf("awsconfig: load default config: %w", err)
	}
	c := &Clients{KMS: kms.NewFromConfig(cfg), SignerKMS: kms.NewFromConfig(cfg), DynamoDB: dynamodb.NewFromConfig(cfg), CloudWatch: cloudwatch.NewFromConfig(cfg), SQS: sqs.NewFromConfig(cfg)}
	if s.AssumeRoleARN != "" {
		target := cfg.Copy()
		target.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), s.AssumeRoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "keyferry-control-plane" }))
		c.KMS = kms.NewFromConfig(target)
		c.kmsConfig = target
	} else {
		c.kmsConfig = cfg
	}
	if s.WSEndpoint != "" {
		c.Connections = apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
			o.BaseEndpoint = aws.String(s.WSEndpoint)
		})
	}
	return c, nil
}
