// Package sandbox runs the whole keyferry system on one machine: a fresh
// NSS softoken database (or SoftHSM2 token, Options.HSM), moto_server as DynamoDB, the KMS emulator (or any
// KMS-compatible endpoint from AWS_ENDPOINT_URL_KMS), the API Gateway
// WebSocket emulator invoking the real Lambda handlers, and the sandbox
// pool's keyferry-agent processes (Options.Agents, each its own identity
// key on the one token) dialling it with SigV4-presigned URLs. It is what
// `make sandbox` runs and the stage for the end-to-end suites.
package sandbox

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/cfntemplate"
	"github.com/keyferry/keyferry/test/ddbfault"
	"github.com/keyferry/keyferry/test/esm"
	"github.com/keyferry/keyferry/test/kmsemu"
	"github.com/keyferry/keyferry/test/lambdaemu"
	"github.com/keyferry/keyferry/test/lambdarun"
	"github.com/keyferry/keyferry/test/motoserver"
)

// Static identities of the sandbox (nothing here is a real secret).
const (
	Account        = "111122223333"
	Region         = "us-east-1"
	AgentID        = "sandbox-agent-1"
	Pool           = "sandbox"
	AgentAccessKey = "AKIASANDBOXAGENT0001"
	AgentSecretKey = "sandbox-agent-secret-not-a-real-key"
	CloudAccessKey = "AKIASANDBOXCLOUD0001"
	// OperatorAccessKey is the operator principal's (the template's
	// OperatorPolicy): what OperatorEnv gives the keyferry CLI.
	OperatorAccessKey = "AKIASANDBOXOPERATOR1"
	CloudSecretKey    = "sandbox-cloud-secret-not-a-real-key"
	SigningKeyAlias   = "alias/keyferry-control-plane"
)

//go:embed groups.yaml
var defaultGroups []byte

//go:embed policies/default.json
var defaultPolicy []byte

// Options configures a sandbox.
type Options struct {
	// Functions is how the Lambda functions run: FunctionsRIE (each its real
	// bootstrap behind the Runtime Interface Emulator, configured from the
	// synthesized template) or FunctionsInProcess (the Go handlers in this
	// process, for the tests that move the engine's clock); empty means
	// $KEYFERRY_SANDBOX_FUNCTIONS, else FunctionsRIE.
	Functions string
	// AccountConcurrency bounds each function without reserved concurrency
	// under FunctionsRIE (default 10).
	AccountConcurrency int
	// Credentials, when set, gives each function's instances their keys by
	// role (FunctionsRIE); default the sandbox's cloud key.
	Credentials func(fn, roleLogicalID string) (accessKeyID, secret string)
	// NoIAM turns off IAM from the template under FunctionsRIE (every
	// call then passes, as in-process).
	NoIAM bool
	// PolicyEdit, when set, may change the synthesized template (its
	// policies, its functions) before IAM and the runtime read it (a test
	// that breaks one on purpose).
	PolicyEdit func(*cfntemplate.Template) error
	// HSM is the token the agent uses: HSMNSS (the default: NSS softoken,
	// whose RFC 5649 lets it export every key spec but ECC_SECG_P256K1) or
	// HSMSoftHSM (SoftHSM2, which cannot export P-256, P-521 or RSA private
	// keys correctly); empty means $KEYFERRY_SANDBOX_HSM, else HSMNSS.
	HSM string
	// GroupsFile is a key-groups file; empty means the built-in sample.
	GroupsFile string
	// Dir holds the token, configs and logs; empty means a new temp dir
	// (removed by Close).
	Dir string
	// KMSEndpoint, when set, is used instead of the built-in emulator
	// (defaults to $AWS_ENDPOINT_URL_KMS).
	KMSEndpoint string
	// AgentBinary is the keyferry-agent executable; empty builds it, with
	// AgentBuildTags. AgentEnv is added to the agent's environment.
	AgentBinary    string
	AgentBuildTags []string
	AgentEnv       []string
	// QuotaScale for the KMS emulator (0 = unlimited).
	QuotaScale float64
	// WrappingKeyPool is how many RSA wrapping keys of each size the KMS
	// emulator keeps pre-generated (0 = the emulator's default).
	WrappingKeyPool int
	// Agents is how many keyferry-agent processes the sandbox pool runs,
	// each its own identity key on the one token and all in the pool's
	// agent list (AgentID, then PoolAgentID(2), ...); 0 means 1. `make
	// sandbox` runs 2.
	Agents int
	// Heartbeat is the agents' heartbeat interval (default 30s); the control
	// plane treats an agent silent for 3 of them as gone.
	Heartbeat time.Duration
	// JobTimeout and RequestTTL of the control plane (defaults 60s and 30s).
	JobTimeout, RequestTTL time.Duration
	// Log receives the sandbox's own JSON logs (default: discarded).
	Log *slog.Logger
	// AgentLog receives the agent's stdout/stderr (default: Dir/agent.log).
	AgentLog io.Writer
	// KMSFault and GatewayFault are the emulators' fault-injection hooks
	// (test/soak, test/security); nil means no faults. DynamoFault, when
	// set, puts a fault proxy (test/ddbfault) in front of moto_server.
	KMSFault     kmsemu.FaultFunc
	GatewayFault apigwemu.Fault
	DynamoFault  ddbfault.Func

	// KMSRegionFault is the emulator's per-Region hook (kmsemu
	// Options.RegionFault): a fault in one Region of a multi-Region group.
	KMSRegionFault func(region, op string, req []byte) *kmsemu.FaultAction
}

// Endpoints are what a person points the AWS CLI and keyferry at.
type Endpoints struct {
	KMS       string `json:"kms"`
	DynamoDB  string `json:"dynamodb"`
	WebSocket string `json:"websocket"`
	// Management is the @connections endpoint (https stage URL form).
	Management string `json:"management"`
	// Lambda is the Lambda Invoke emulator (keyferry-operator, keyferry-rotate).
	Lambda string `json:"lambda"`
	// JobQueue is the worker's SQS job queue (moto_server).
	JobQueue string `json:"job_queue"`
}

// Sandbox is a running system.
type Sandbox struct {
	Options
	Endpoints Endpoints
	Groups    *groups.Config
	Deps      *handlers.Deps
	KMS       *kms.Client
	Emulator  *kmsemu.Server // nil with an external KMS endpoint
	Gateway   *apigwemu.Emulator
	Lambda    *lambdaemu.Server
	// identityPEM is the agent's identity key of this run (in the groups
	// file, not in the template).
	identityPEM string
	// Template is the synthesized stack and Runtime the functions' instances
	// (FunctionsRIE only).
	Template *cfntemplate.Template
	Runtime  *lambdarun.Runtime

	signingKeyARN string
	lambdaLog     *os.File
	iam           *iamState
	gatewayCreds  map[string]apigwemu.Credential

	tempDir bool
	moto    *motoserver.Server
	// motoSvc plays SQS, CloudWatch, EventBridge, Scheduler and STS: a
	// second moto_server, so the job queue's polling and DynamoDB's load
	// (one Python process each uses at most one core) run side by side.
	motoSvc   *motoserver.Server
	ddbProxy  *ddbfault.Proxy
	hsmConfig string // agent config file
	env       []string

	metricsFile *os.File
	// restore lists the process environment before Start ("K=V", or "K" if unset).
	restore []string

	worker *esm.Poller

	mu    sync.Mutex
	agent *exec.Cmd
	exit  chan struct{}
	// PoolAgents are the pool's further agents (Options.Agents beyond the
	// first, and AddPoolAgent's).
	PoolAgents []*PoolAgent
}

// The sandbox's tokens (Options.HSM).
const (
	HSMNSS     = "nss"
	HSMSoftHSM = "softhsm2"
)

// Check reports missing prerequisites with the command that installs them.
func Check() error {
	var missing []string
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		missing = append(missing, "softhsm2 (softhsm2-util)")
	}
	if _, err := os.Stat(hsmtest.SoftHSMModule); err != nil {
		missing = append(missing, "softhsm2 module "+hsmtest.SoftHSMModule)
	}
	if _, err := os.Stat(hsmtest.NSSModule); err != nil {
		missing = append(missing, "NSS softoken "+hsmtest.NSSModule+" (libnss3)")
	}
	if _, err := exec.LookPath("certutil"); err != nil {
		missing = append(missing, "certutil (libnss3-tools)")
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		missing = append(missing, "moto_server ("+motoserver.InstallHint+")")
	}
	if len(missing) > 0 {
		return fmt.Errorf("sandbox: missing %s: run `make deps` (apt-get install softhsm2 opensc opencryptoki libnss3 libnss3-tools)", strings.Join(missing, ", "))
	}
	return nil
}

// Start brings the whole system up and waits for the agent to connect.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	s := &Sandbox{Options: opts}
	if s.Log == nil {
		s.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if s.JobTimeout == 0 {
		s.JobTimeout = 60 * time.Second
	}
	if s.RequestTTL == 0 {
		s.RequestTTL = 30 * time.Second
	}
	if s.KMSEndpoint == "" {
		s.KMSEndpoint = os.Getenv("AWS_ENDPOINT_URL_KMS")
	}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "keyferry-sandbox-"); err != nil {
			return nil, err
		}
		s.tempDir = true
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	// 1. The HSM: a fresh NSS database or SoftHSM2 token.
	hcfg, err := s.newToken()
	if err != nil {
		return nil, err
	}
	// 2. DynamoDB.
	if s.moto, err = motoserver.StartSerialized(ctx); err != nil {
		return nil, err
	}
	s.Endpoints.DynamoDB = s.moto.URL()
	if s.motoSvc, err = motoserver.StartSerialized(ctx); err != nil {
		return nil, err
	}
	if s.DynamoFault != nil {
		if s.ddbProxy, err = ddbfault.Start(s.moto.URL(), s.DynamoFault); err != nil {
			return nil, fmt.Errorf("sandbox: DynamoDB fault proxy: %w", err)
		}
		s.Endpoints.DynamoDB = s.ddbProxy.URL()
	}
	// 3. KMS.
	if s.KMSEndpoint == "" {
		s.Emulator = kmsemu.New(kmsemu.Options{Region: Region, Account: Account, QuotaScale: s.QuotaScale, RotationCap: 100, RotationDelay: 500 * time.Millisecond, Fault: s.KMSFault, RegionFault: s.KMSRegionFault, WrappingKeyPool: s.WrappingKeyPool})
		if err := s.Emulator.Start("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("sandbox: KMS emulator: %w", err)
		}
		s.KMSEndpoint = s.Emulator.URL()
	}
	s.Endpoints.KMS = s.KMSEndpoint
	// 4. The gateway; routes are attached once the handlers exist.
	gwOpts := apigwemu.SandboxOptions(map[string]apigwemu.Credential{
		AgentAccessKey: {SecretAccessKey: AgentSecretKey, PrincipalARN: "arn:aws:iam::" + Account + ":user/keyferry-agent"},
	})
	gwOpts.Logger = s.Log.With("component", "gateway")
	gwOpts.Stage, gwOpts.Region, gwOpts.Account = GatewayStage, Region, Account
	// @connections posts are signed; under FunctionsRIE each function signs
	// with its role's key (added by startIAM) and IAM authorizes it.
	s.gatewayCreds = map[string]apigwemu.Credential{CloudAccessKey: {SecretAccessKey: CloudSecretKey, PrincipalARN: "arn:aws:iam::" + Account + ":root"}}
	gwOpts.ManagementCredentials = s.gatewayCreds
	gwOpts.Authorize = s.authorize
	gwOpts.Fault = s.GatewayFault
	s.Gateway = apigwemu.New(gwOpts)
	if err := s.Gateway.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("sandbox: gateway emulator: %w", err)
	}
	s.Endpoints.WebSocket = s.Gateway.URL()
	s.Endpoints.Management = s.Gateway.ManagementURL()

	// The control plane's AWS clients read the standard variables.
	s.setCloudEnv()
	if err := s.createTables(ctx); err != nil {
		return nil, err
	}
	if err := s.createJobQueue(ctx); err != nil {
		return nil, err
	}
	pubPEM, err := s.createSigningKey(ctx)
	if err != nil {
		return nil, err
	}
	// 5. The agent's identity (an HSM-resident P-256 key) goes into the
	// groups file's pool registry, as an operator would register it.
	agentCfg, err := s.writeAgentConfig(hcfg, pubPEM)
	if err != nil {
		return nil, err
	}
	if s.AgentBinary == "" {
		if s.AgentBinary, err = BuildAgent(ctx, s.Dir, s.AgentBuildTags...); err != nil {
			return nil, err
		}
	}
	identity, err := s.agentIdentity(ctx, agentCfg)
	if err != nil {
		return nil, err
	}
	s.identityPEM = identity
	registered := []groups.Agent{{ID: AgentID, PublicKey: identity}}
	for n := 2; n <= s.Agents; n++ {
		p, pemKey, err := s.poolAgent(ctx, PoolAgentID(n))
		if err != nil {
			return nil, err
		}
		s.PoolAgents = append(s.PoolAgents, p)
		registered = append(registered, groups.Agent{ID: p.ID, PublicKey: pemKey})
	}
	groupsFile, err := s.writeGroups(registered)
	if err != nil {
		return nil, err
	}
	if s.Groups, err = groups.Load(groupsFile); err != nil {
		return nil, err
	}
	s.setenv(awsconfig.EnvGroupsFile, groupsFile)
	if s.Deps, err = handlers.FromEnv(ctx); err != nil {
		return nil, fmt.Errorf("sandbox: control plane: %w", err)
	}
	s.Deps.Log = s.Log
	s.Deps.Engine.Log = s.Log
	// EMF metrics go to a file (in Lambda they are stdout lines CloudWatch reads).
	if s.metricsFile, err = os.OpenFile(filepath.Join(s.Dir, "metrics.emf.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
		return nil, err
	}
	s.Deps.Metrics.W = s.metricsFile
	// The functions behind the Lambda Invoke API, for the keyferry CLI
	// (AWS_ENDPOINT_URL_LAMBDA) and the triggers.
	s.Lambda = lambdaemu.New(lambdaemu.Options{Region: Region, Account: Account, Log: s.Log, Authorize: s.authorize})
	if err := s.Lambda.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("sandbox: lambda emulator: %w", err)
	}
	if s.Functions == "" {
		s.Functions = os.Getenv("KEYFERRY_SANDBOX_FUNCTIONS")
	}
	switch s.Functions {
	case "", FunctionsRIE:
		s.Functions = FunctionsRIE
		if err := s.startFunctions(ctx, groupsFile); err != nil {
			return nil, err
		}
	case FunctionsInProcess:
		for _, r := range []string{"$connect"} {
			s.Gateway.Route(r, s.Deps.Connect)
		}
		s.Gateway.Route("$disconnect", s.Deps.Disconnect)
		for _, r := range []string{"$default", "hello", "wrap_result", "error", "heartbeat"} {
			s.Gateway.Route(r, s.Deps.AgentMessage)
		}
		s.Lambda.Register("keyferry-operator", lambdaemu.Typed(s.Deps.Operator))
		s.Lambda.Register("keyferry-rotate", s.Deps.Rotate)
		s.Lambda.Register(WorkerFunction, lambdaemu.Typed(s.Deps.Work))
	default:
		return nil, fmt.Errorf("sandbox: functions %q: want %q or %q", s.Functions, FunctionsRIE, FunctionsInProcess)
	}
	s.Endpoints.Lambda = s.Lambda.URL()
	if err := s.startWorker(ctx); err != nil {
		return nil, err
	}
	// 6. The agent processes.
	if err := s.StartAgent(ctx); err != nil {
		return nil, err
	}
	if err := s.WaitAgent(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	if len(s.PoolAgents) > 0 {
		for _, p := range s.PoolAgents {
			if err := p.Start(); err != nil {
				return nil, err
			}
		}
		if err := s.WaitAgents(ctx, 60*time.Second); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// setCloudEnv points this process's AWS SDK clients at the sandbox.
func (s *Sandbox) setCloudEnv() {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":           CloudAccessKey,
		"AWS_SECRET_ACCESS_KEY":       CloudSecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(s.Dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(s.Dir, "aws-credentials"),
		"AWS_ENDPOINT_URL_KMS":        s.Endpoints.KMS,
		"AWS_ENDPOINT_URL_DYNAMODB":   s.Endpoints.DynamoDB,
		"AWS_ENDPOINT_URL_SQS":        s.motoSvc.URL(),
		awsconfig.EnvWSEndpoint:       s.Endpoints.Management,
		awsconfig.EnvSigningKey:       SigningKeyAlias,
		awsconfig.EnvTablePrefix:      "keyferry-",
		awsconfig.EnvJobTimeout:       s.JobTimeout.String(),
		awsconfig.EnvRequestTTL:       s.RequestTTL.String(),
		awsconfig.EnvQuotaScale:       quotaScale(s.QuotaScale),
		"KEYFERRY_SANDBOX_DIR":        s.Dir,
	}
	for k, v := range env {
		s.setenv(k, v)
		s.env = append(s.env, k+"="+v)
	}
}

// setenv sets a process variable and remembers its old value for Close.
func (s *Sandbox) setenv(k, v string) {
	if old, ok := os.LookupEnv(k); ok {
		s.restore = append(s.restore, k+"="+old)
	} else {
		s.restore = append(s.restore, k)
	}
	os.Setenv(k, v)
}

// Env lists the variables to export so the AWS CLI and keyferry CLI use this sandbox.
func (s *Sandbox) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + CloudAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + CloudSecretKey,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ENDPOINT_URL_KMS=" + s.Endpoints.KMS,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.Endpoints.DynamoDB,
		"AWS_ENDPOINT_URL_LAMBDA=" + s.Endpoints.Lambda,
		awsconfig.EnvWSEndpoint + "=" + s.Endpoints.Management,
		awsconfig.EnvGroupsFile + "=" + os.Getenv(awsconfig.EnvGroupsFile),
	}
}

// OperatorEnv is Env as the operator principal: the keyferry CLI signs
// with the operator's key and calls KMS and DynamoDB through the IAM gates,
// so every call it makes is decided by the template's OperatorPolicy. The
// same as Env when IAM is off.
func (s *Sandbox) OperatorEnv() []string {
	env := s.Env()
	if s.iam == nil {
		return env
	}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "AWS_ACCESS_KEY_ID":
			env[i] = k + "=" + OperatorAccessKey
		case "AWS_ENDPOINT_URL_KMS":
			env[i] = k + "=" + s.iam.kms
		case "AWS_ENDPOINT_URL_DYNAMODB":
			env[i] = k + "=" + s.iam.ddb
		}
	}
	return env
}

func (s *Sandbox) createTables(ctx context.Context) error {
	ddb := dynamodb.NewFromConfig(aws.Config{Region: Region, Credentials: staticCreds(), BaseEndpoint: aws.String(s.Endpoints.DynamoDB)})
	for _, in := range store.TableSchemas(store.TablesWithPrefix("keyferry-")) {
		if _, err := ddb.CreateTable(ctx, &in); err != nil {
			// A fresh moto_server has no tables: an existing one means the
			// SDK retried a create moto had already applied.
			var inUse *ddbtypes.ResourceInUseException
			if errors.As(err, &inUse) {
				continue
			}
			return fmt.Errorf("sandbox: create table %s: %w", *in.TableName, err)
		}
	}
	return nil
}

func staticCreds() aws.CredentialsProviderFunc {
	return func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: CloudAccessKey, SecretAccessKey: CloudSecretKey, Source: "sandbox"}, nil
	}
}

// Close stops the agent, the emulators and moto_server, and removes a temp dir.
func (s *Sandbox) Close() error {
	var errs []error
	s.mu.Lock()
	further := s.PoolAgents
	s.mu.Unlock()
	for _, p := range further {
		errs = append(errs, p.Signal(syscall.SIGTERM))
	}
	errs = append(errs, s.StopAgent())
	if s.worker != nil {
		s.worker.Close()
	}
	if s.Runtime != nil {
		errs = append(errs, s.Runtime.Close())
	}
	s.iam.close()
	if s.Lambda != nil {
		errs = append(errs, s.Lambda.Close())
	}
	if s.lambdaLog != nil {
		s.lambdaLog.Close()
	}
	if s.Gateway != nil {
		errs = append(errs, s.Gateway.Close())
	}
	if s.Emulator != nil {
		s.Emulator.Close()
	}
	if s.ddbProxy != nil {
		errs = append(errs, s.ddbProxy.Close())
	}
	if s.moto != nil {
		s.moto.Close()
	}
	if s.motoSvc != nil {
		s.motoSvc.Close()
	}
	if s.metricsFile != nil {
		s.metricsFile.Close()
	}
	// Give the process its environment back, so a later sandbox in the same
	// process does not mistake this one's emulator URL for an external KMS.
	for _, kv := range s.restore {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		} else {
			os.Unsetenv(k)
		}
	}
	s.restore = nil
	if s.tempDir {
		os.RemoveAll(s.Dir)
	}
	return errors.Join(errs...)
}

// quotaScale maps the emulator's scale (0 = unlimited) to the pacer's.
func quotaScale(f float64) string {
	if f <= 0 {
		return "1000"
	}
	return fmt.Sprint(f)
}
