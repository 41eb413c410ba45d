package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/shared/protocol"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	if code, out, _ := runCmd("version"); code != 0 || !strings.Contains(out, "keyferry-agent") {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, _ := runCmd("bogus"); code != 2 {
		t.Fatalf("unknown command exit %d", code)
	}
	if code, _, _ := runCmd(); code != 2 {
		t.Fatalf("no command exit %d", code)
	}
}

// TestAuditVerifyCommand: `audit verify` passes on an untouched log and
// fails, naming the record, after an edit, a deletion, a reordering and a
// truncation in the middle.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := audit.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := l.Append(context.Background(), audit.Record{Event: audit.EventRequest, Decision: "accepted", RequestID: "r" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(orig), "\n"), "\n")
	fix := func(ls []string) string {
		s := strings.Join(ls, "")
		if !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		return s
	}
	cp := func() []string { return append([]string{}, lines...) }
	tests := []struct {
		name, content, want string
	}{
		{"untouched", string(orig), ""},
		{"edit", strings.Replace(string(orig), `"r2"`, `"r9"`, 1), "record seq 3 (line 3)"},
		{"delete", func() string { l := cp(); return fix(append(l[:1], l[2:]...)) }(), "record seq 3 (line 2)"},
		{"reorder", func() string { l := cp(); l[3], l[4] = strings.TrimSuffix(l[4], "\n")+"\n", l[3]; return fix(l) }(), "record seq 5 (line 4)"},
		{"truncate in the middle", func() string {
			l := cp()
			l[2] = l[2][:len(l[2])/2] + "\n"
			return fix(l)
		}(), "line 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.jsonl")
			os.WriteFile(p, []byte(tc.content), 0o600)
			code, out, errOut := runCmd("audit", "verify", p)
			if tc.want == "" {
				if code != 0 || !strings.Contains(out, "OK: 5 records") {
					t.Fatalf("untouched log: exit %d %q %q", code, out, errOut)
				}
				return
			}
			if code != 1 || !strings.Contains(errOut, "FAILED") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want FAILED naming %q", code, errOut, tc.want)
			}
		})
	}
}

// agentFiles writes a config for a fresh SoftHSM token and a loopback endpoint.
func agentFiles(t *testing.T, endpoint string) (cfgPath, auditPath string, cp *protocol.ECDSASigner) {
	t.Helper()
	hc := hsmtest.SoftHSM(t)
	dir := t.TempDir()
	cp, _ = protocol.GenerateECDSASigner()
	der, _ := x509.MarshalPKIXPublicKey(cp.PublicKey())
	pemPath := filepath.Join(dir, "cp.pem")
	os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	auditPath = filepath.Join(dir, "audit.jsonl")
	cfg := `agent_id: cmd-test
endpoint: ` + endpoint + `
region: eu-west-1
state_dir: ` + filepath.Join(dir, "state") + `
hsm: {module: ` + hc.Module + `, token_label: ` + hc.TokenLabel + `, pin_file: ` + hc.PINFile + `, pool_size: 2}
control_plane: {public_key_file: ` + pemPath + `}
policy: {accounts: ["111122223333"], regions: [eu-west-1], groups: ["*"], key_specs: [SYMMETRIC_DEFAULT]}
tunnel: {heartbeat_interval: 100ms, max_connection_age: 1h, backoff_initial: 10ms, backoff_max: 100ms}
audit: {path: ` + auditPath + `, sign: true}
metrics: {listen: "127.0.0.1:0"}
`
	cfgPath = filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	return cfgPath, auditPath, cp
}

func TestCheckCommandWithSoftHSM(t *testing.T) {
	cfgPath, _, _ := agentFiles(t, "https://abc.execute-api.eu-west-1.amazonaws.com/prod")
	code, out, errOut := runCmd("check", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("check exit %d: %s", code, errOut)
	}
	for _, want := range []string{"config: ok", "logged in", "SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "BEGIN PUBLIC KEY"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	blk, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	if blk == nil {
		t.Fatal("no identity PEM")
	}
	// `identity` prints exactly the same key, and nothing else.
	code, idOut, errOut := runCmd("identity", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("identity exit %d: %s", code, errOut)
	}
	if idBlk, rest := pem.Decode([]byte(idOut)); idBlk == nil || !bytes.Equal(idBlk.Bytes, blk.Bytes) || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("identity output %q", idOut)
	}
	if _, err := protocol.ParseVerifierDER(blk.Bytes); err != nil {
		t.Fatalf("identity key is not a P-256 verifier key: %v", err)
	}
}

func TestCheckListsEveryConfigProblem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("agent_id: x\nregion: nowhere\npolicy: {accounts: [\"1\"]}\n"), 0o600)
	code, _, errOut := runCmd("check", "-config", p)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"endpoint:", "region:", "hsm.module:", "policy.accounts[0]:", "control_plane.public_key_file:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("problems lack %q:\n%s", want, errOut)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^  - `).FindAllString(errOut, -1)); n < 5 {
		t.Fatalf("only %d problems listed", n)
	}
}

// TestRunSendsHelloAndStopsGracefully runs the real command (SIGTERM as a
// context cancel) against a loopback websocket server: it presigns with the
// environment's credentials, says hello signed by the HSM identity, and on
// shutdown closes the audit log with start and stop records that verify.
func TestRunSendsHelloAndStopsGracefully(t *testing.T) {
	var mu sync.Mutex
	var query string
	hellos := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		query = r.URL.RawQuery
		mu.Unlock()
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if env, err := protocol.Decode(m); err == nil && env.Action == protocol.ActionHello {
				hellos <- m
			}
		}
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-test")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	cfgPath, auditPath, _ := agentFiles(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/prod")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- cmdRun(ctx, []string{"-config", cfgPath}, &logs) }()
	select {
	case m := <-hellos:
		env, _ := protocol.Decode(m)
		if env.Signer != "cmd-test" {
			t.Fatalf("hello signer %q", env.Signer)
		}
	case err := <-done:
		t.Fatalf("run exited: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatal("no hello")
	}
	mu.Lock()
	q := query
	mu.Unlock()
	if !strings.Contains(q, "X-Amz-Signature=") || !strings.Contains(q, "execute-api") {
		t.Fatalf("connect URL not SigV4-presigned: %s", q)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	code, out, errOut := runCmd("audit", "verify", auditPath)
	if code != 0 || !strings.Contains(out, "OK: 2 records") {
		t.Fatalf("audit after run: %d %s %s", code, out, errOut)
	}
	if strings.Contains(logs.String(), "secret-test") || strings.Contains(logs.String(), hsmtest.SoftHSMUserPIN) {
		t.Fatal("credentials or PIN in logs")
	}
}
