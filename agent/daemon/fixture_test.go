//go:build cgo

package daemon

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/agent/metrics"
	"github.com/keyferry/keyferry/agent/policy"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/logsink"
)

// countingHSM passes every call to the real HSM and counts the calls that
// create or export keys.
type countingHSM struct {
	HSM
	generates, wraps atomic.Int64
}

func (c *countingHSM) Generate(ctx context.Context, label string, spec keyspec.Spec, opts ...hsm.GenerateOption) (*hsm.Key, error) {
	c.generates.Add(1)
	return c.HSM.Generate(ctx, label, spec, opts...)
}

func (c *countingHSM) Wrap(ctx context.Context, label string, der []byte, alg keyspec.WrappingAlgorithm) ([]byte, error) {
	c.wraps.Add(1)
	return c.HSM.Wrap(ctx, label, der, alg)
}

// sink collects what the daemon sends.
type sink struct {
	mu   sync.Mutex
	msgs [][]byte
	ch   chan []byte
}

func newSink() *sink { return &sink{ch: make(chan []byte, 100)} }

func (s *sink) Send(m []byte) error {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	s.ch <- m
	return nil
}

func (s *sink) next(t *testing.T) *protocol.Envelope {
	t.Helper()
	select {
	case m := <-s.ch:
		env, err := protocol.Decode(m)
		if err != nil {
			t.Fatalf("daemon sent an undecodable message: %v", err)
		}
		return env
	case <-time.After(60 * time.Second):
		t.Fatal("no message from the daemon within 60s")
		return nil
	}
}

var (
	wkOnce         sync.Once
	wk2048Priv     *rsa.PrivateKey
	wk3072Priv     *rsa.PrivateKey
	wk2048, wk3072 []byte
)

func wrappingKeys() {
	wkOnce.Do(func() {
		wk2048Priv, _ = rsa.GenerateKey(rand.Reader, 2048)
		wk3072Priv, _ = rsa.GenerateKey(rand.Reader, 3072)
		wk2048, _ = x509.MarshalPKIXPublicKey(&wk2048Priv.PublicKey)
		wk3072, _ = x509.MarshalPKIXPublicKey(&wk3072Priv.PublicKey)
	})
}

// agent is a daemon over a fresh real SoftHSM token.
type agent struct {
	d         *Daemon
	h         *hsm.HSM
	hsm       *countingHSM
	id        *hsm.IdentityKey
	cp        *protocol.ECDSASigner
	out       *sink
	auditPath string
	pinsPath  string
	logs      *logsink.Buffer
	metrics   *metrics.Metrics
	now       time.Time
}

func newAgent(t *testing.T, mod func(*policy.Config)) *agent {
	t.Helper()
	wrappingKeys()
	ctx := context.Background()
	logs := &logsink.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := hsmtest.SoftHSM(t)
	cfg.Logger = logger
	cfg.PoolSize = 2
	h, err := hsm.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	id, err := h.Identity(ctx, "kf-agent-identity")
	if err != nil {
		t.Fatal(err)
	}
	caps, err := h.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := protocol.GenerateECDSASigner()
	v, _ := protocol.NewVerifier(cp.PublicKey())
	dir := t.TempDir()
	a := &agent{h: h, hsm: &countingHSM{HSM: h}, id: id, cp: cp, out: newSink(), logs: logs, metrics: metrics.New(),
		auditPath: filepath.Join(dir, "audit.jsonl"), pinsPath: filepath.Join(dir, "pins.json"), now: time.Now().UTC()}
	pins, err := policy.OpenPins(a.pinsPath)
	if err != nil {
		t.Fatal(err)
	}
	pc := policy.Config{
		Verifier: v, ClockSkew: time.Minute,
		Accounts: []string{"111122223333"}, Regions: []string{"eu-west-1"}, Groups: []string{"payments", "tokens"},
		KeySpecs:           []keyspec.Spec{keyspec.SymmetricDefault, keyspec.HMAC256, keyspec.ECCNISTP256},
		MinWrappingKeyBits: 3072, GlobalRate: policy.Rate{PerMinute: 600, Burst: 100}, GroupRate: policy.Rate{PerMinute: 600, Burst: 100},
		ReplayCacheSize: 1000, Pins: pins,
	}
	if mod != nil {
		mod(&pc)
	}
	log, err := audit.Open(a.auditPath, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	a.d, err = New(Config{AgentID: "agent-test", Version: "test", HSMPool: "softhsm", PoolSize: cfg.PoolSize, HSM: a.hsm,
		Identity: id, Capabilities: HelloCapabilities(caps, Allowed{}), Policy: policy.New(pc), Audit: log, Metrics: a.metrics, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	a.d.SetSender(a.out)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent logs:\n%s", a.logs.Bytes())
		}
	})
	return a
}

// request returns a valid signed wrap request (as sent on the wire).
func (a *agent) request(t *testing.T, mod func(*protocol.WrapRequest)) []byte {
	t.Helper()
	return a.sealRequest(t, a.cp, a.requestStruct(mod))
}

func (a *agent) requestStruct(mod func(*protocol.WrapRequest)) protocol.WrapRequest {
	n, _ := protocol.NewNonce()
	r := protocol.WrapRequest{
		RequestID: "req-" + n.String()[:8], JobID: "job-1", Nonce: n, Account: "111122223333", Region: "eu-west-1",
		Group: "payments", KeyARN: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		KeySpec: keyspec.SymmetricDefault, Operation: protocol.OpGenerate,
		WrappingAlgorithm: keyspec.RSAESOAEPSHA1, WrappingKeySpec: keyspec.WrapRSA3072, WrappingPublicKey: wk3072,
		IssuedAt: time.Now().UTC().Add(-time.Second), ExpiresAt: time.Now().UTC().Add(5 * time.Minute),
	}
	if mod != nil {
		mod(&r)
	}
	if r.HSMLabel == "" && r.Operation == protocol.OpGenerate {
		// The control plane plans every generation; a test that does not
		// name one gets the next of this test binary's.
		r.HSMLabel = fmt.Sprintf("kf/%s/%d", r.Group, fixtureGeneration.Add(1))
	}
	return r
}

// fixtureGeneration numbers the generations requestStruct plans.
var fixtureGeneration atomic.Uint64

func (a *agent) sealRequest(t *testing.T, s protocol.Signer, r protocol.WrapRequest) []byte {
	t.Helper()
	b, err := protocol.Seal(context.Background(), s, "control-plane", protocol.ActionWrapRequest, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *agent) objects(t *testing.T) int {
	t.Helper()
	n, err := a.h.CountObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (a *agent) auditRecords(t *testing.T) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(a.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(bytes.NewReader(b), nil); err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	var out []audit.Record
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		r, err := audit.DecodeLine(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *r)
	}
	return out
}

func x509ParseP256(der []byte) (*ecdsa.PublicKey, error) {
	v, err := protocol.ParseVerifierDER(der)
	if err != nil {
		return nil, err
	}
	return v.PublicKey(), nil
}

func openFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
