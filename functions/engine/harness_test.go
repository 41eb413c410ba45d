package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/kmssign"
	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/agentpeer"
	"github.com/keyferry/keyferry/test/dynamotest"
	"github.com/keyferry/keyferry/test/kmsemu"
	"github.com/keyferry/keyferry/test/logsink"
)

const (
	account = "111122223333"
	region  = "us-east-1"
)

// Shared by every test of the binary (tests are sequential): one moto_server
// (dynamotest.Main), one KMS emulator, one SoftHSM token and its HSM layer.
var (
	emu    *kmsemu.Server
	theHSM *hsm.HSM
	// faultHook, when set, injects emulator faults (tests are sequential).
	faultHook atomic.Pointer[kmsemu.FaultFunc]
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	emu = kmsemu.New(kmsemu.Options{Region: region, Account: account, QuotaScale: 0, RotationDelay: -1,
		Fault: func(op string, req []byte) *kmsemu.FaultAction {
			if f := faultHook.Load(); f != nil {
				return (*f)(op, req)
			}
			return nil
		}})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, "kmsemu:", err)
		return 1
	}
	defer emu.Close()
	dir, err := os.MkdirTemp("", "engine-softhsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cfg, err := hsmtest.NewSoftHSMToken(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "softhsm:", err)
		return 1
	}
	theHSM, err = hsm.Open(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hsm open:", err)
		return 1
	}
	defer theHSM.Close()
	return dynamotest.Main(m)
}

func kmsClient() *kms.Client {
	return kms.New(kms.Options{
		Region:       region,
		BaseEndpoint: aws.String(emu.URL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
	})
}

type harness struct {
	t     *testing.T
	ctx   context.Context
	kms   *kms.Client
	st    *store.Store
	eng   *engine.Engine
	loop  *agentpeer.Loopback
	peer  *agentpeer.Peer
	cfg   *groups.Config
	logs  *logsink.Buffer
	conns map[string]*agentpeer.Peer
}

var groupSeq int

// uniq gives each test its own group names and aliases on the shared emulator.
func uniq(name string) string {
	groupSeq++
	return fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano()%100000, groupSeq)
}

// newHarness builds an engine over the shared emulator and a fresh set of
// tables, with one peer "agent-1" in pool "p1" connected as "conn-1".
// groupsYAML is the groups: list (indented by two spaces).
func newHarness(t *testing.T, groupsYAML string) *harness {
	t.Helper()
	ctx := context.Background()
	kc := kmsClient()
	// The control plane's signing key lives in KMS (ECC_NIST_P256, SIGN_VERIFY).
	ck, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("create control-plane key: %v", err)
	}
	signer := kmssign.New(kc, aws.ToString(ck.KeyMetadata.KeyId))
	cpPub, _, err := signer.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cpVerifier, err := protocol.NewVerifier(cpPub)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := agentpeer.New(ctx, theHSM, "agent-1", "p1", cpVerifier)
	if err != nil {
		t.Fatal(err)
	}
	peer.Now = emu.Now
	var y strings.Builder
	fmt.Fprintf(&y, "version: 1\nhsm_pools:\n  - name: p1\n    agents:\n      - id: agent-1\n        public_key: |\n")
	for _, line := range strings.Split(strings.TrimSpace(peer.PublicKeyPEM()), "\n") {
		fmt.Fprintf(&y, "          %s\n", line)
	}
	fmt.Fprintf(&y, "defaults:\n  account: %q\n  region: %s\n  hsm_pool: p1\n  schedule: rate(1 day)\n  policy_file: policy.json\ngroups:\n%s", account, region, groupsYAML)
	dir := t.TempDir()
	policy := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "groups.yaml"), []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := groups.Load(filepath.Join(dir, "groups.yaml"))
	if err != nil {
		t.Fatalf("groups: %v\n%s", err, y.String())
	}
	logs := &logsink.Buffer{}
	st := store.New(dynamotest.Client(t), dynamotest.Tables(t))
	loop := agentpeer.NewLoopback()
	eng := &engine.Engine{
		Store: st, KMS: kc, Connections: loop, Groups: cfg,
		Signer: signer, SignerID: signer.KeyID(),
		Pacer:        pacer.New(0.8, 100),
		Log:          slog.New(slog.NewJSONHandler(io.MultiWriter(logs), nil)),
		Now:          emu.Now,
		RotationPoll: 10 * time.Millisecond, RotationWait: 5 * time.Second,
	}
	h := &harness{t: t, ctx: ctx, kms: kc, st: st, eng: eng, loop: loop, peer: peer, cfg: cfg, logs: logs, conns: map[string]*agentpeer.Peer{}}
	h.connect("conn-1", peer)
	return h
}

// connect records a connection for p and sends its hello.
func (h *harness) connect(id string, p *agentpeer.Peer) {
	h.t.Helper()
	now := emu.Now()
	if err := h.st.PutConnection(h.ctx, &store.Connection{ID: id, AgentID: p.ID, Pool: p.Pool, ConnectedAt: now, LastSeen: now}); err != nil {
		h.t.Fatal(err)
	}
	msg, err := p.Hello(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	env, err := protocol.Decode(msg)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.eng.HandleHello(h.ctx, id, env); err != nil {
		h.t.Fatalf("hello: %v", err)
	}
	h.conns[id] = p
}

// deliver answers every queued wrap_request with the peer and feeds the
// wrap_results to the engine; it returns how many it delivered.
func (h *harness) deliver() int {
	h.t.Helper()
	n, err := h.deliverErr()
	if err != nil {
		h.t.Fatalf("wrap_result: %v", err)
	}
	return n
}

// deliverErr is deliver returning the engine's error instead of failing.
func (h *harness) deliverErr() (int, error) {
	h.t.Helper()
	n := 0
	for {
		msgs := h.loop.Take()
		if len(msgs) == 0 {
			return n, nil
		}
		for _, m := range msgs {
			p := h.conns[m.ConnectionID]
			res, err := p.Answer(h.ctx, m.Data)
			if err != nil {
				h.t.Fatalf("agent peer: %v", err)
			}
			env, err := protocol.Decode(res)
			if err != nil {
				h.t.Fatal(err)
			}
			n++
			if _, err := h.eng.HandleWrapResult(h.ctx, m.ConnectionID, env); err != nil {
				return n, err
			}
		}
	}
}

// answerFirst starts a job for group g and returns it with the peer's
// genuine answer to its wrap_request (sealed, and decoded), not delivered.
func (h *harness) answerFirst(g string) (*store.Job, *protocol.Envelope, protocol.WrapResult) {
	h.t.Helper()
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
	if err != nil {
		h.t.Fatal(err)
	}
	msgs := h.loop.Take()
	if len(msgs) != 1 {
		h.t.Fatalf("%d requests", len(msgs))
	}
	valid, err := h.peer.Answer(h.ctx, msgs[0].Data)
	if err != nil {
		h.t.Fatal(err)
	}
	env, err := protocol.Decode(valid)
	if err != nil {
		h.t.Fatal(err)
	}
	var res protocol.WrapResult
	if err := json.Unmarshal(env.Payload, &res); err != nil {
		h.t.Fatal(err)
	}
	return j, env, res
}

// rotate triggers a rotation and delivers the agent's answers.
func (h *harness) rotate(group, trigger string) *store.Job {
	h.t.Helper()
	j, outcome, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: group, Trigger: "schedule", TriggerID: trigger})
	if err != nil {
		h.t.Fatalf("start %s: %v", group, err)
	}
	if outcome != store.Started {
		h.t.Fatalf("start %s: outcome %s (%s)", group, outcome, j.Reason)
	}
	h.deliver()
	return h.job(j.ID)
}

func (h *harness) job(id string) *store.Job {
	h.t.Helper()
	j, err := h.st.GetJob(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func (h *harness) requireState(j *store.Job, want store.State) {
	h.t.Helper()
	if j.State != want {
		h.t.Fatalf("job %s (%s) is %s, want %s; reason %q; history %+v", j.ID, j.Group, j.State, want, j.Reason, j.History)
	}
}

// aliasTarget returns the key ARN an alias points at.
func (h *harness) aliasTarget(alias string) *kmstypes.KeyMetadata {
	h.t.Helper()
	d, err := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err != nil {
		h.t.Fatalf("describe %s: %v", alias, err)
	}
	return d.KeyMetadata
}

func engineTrigger(group, id string) engine.TriggerRequest {
	return engine.TriggerRequest{Group: group, Trigger: "operator", TriggerID: id}
}

type (
	keyspecAlg = keyspec.WrappingAlgorithm
	keyspecWKS = keyspec.WrappingKeySpec
)
