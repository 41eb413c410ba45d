package handlers_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/agentpeer"
	"github.com/keyferry/keyferry/test/dynamotest"
	"github.com/keyferry/keyferry/test/kmsemu"
)

var emu *kmsemu.Server

func TestMain(m *testing.M) {
	emu = kmsemu.New(kmsemu.Options{Region: "us-east-1", Account: "111122223333", RotationDelay: -1})
	if err := emu.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := dynamotest.Main(m)
	emu.Close()
	os.Exit(code)
}

type fixture struct {
	d     *handlers.Deps
	st    *store.Store
	agent *protocol.ECDSASigner
	loop  *agentpeer.Loopback
}

// newDeps builds handlers over fresh tables and the shared KMS emulator,
// with group g1 (alarm "surge", cooldown 1h) in pool p1 and registered
// agent "agent-1" (in-memory identity key).
func newDeps(t *testing.T) *fixture {
	t.Helper()
	agent, err := protocol.GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := protocol.GenerateECDSASigner()
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: agent.PublicKeyDER()})
	cfg, err := loadGroups(t, "p1", "agent-1", string(pemKey), `    alarms:
      - name: surge
        operation: Decrypt
        type: threshold
        threshold: 100000
        comparison: GreaterThanThreshold
        period: 1m
        evaluation_periods: 1
        cooldown: 1h
`)
	if err != nil {
		t.Fatal(err)
	}
	kc := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(emu.URL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "t", SecretAccessKey: "t"}, nil
		})})
	st := store.New(dynamotest.Client(t), dynamotest.Tables(t))
	loop := agentpeer.NewLoopback()
	eng := &engine.Engine{Store: st, KMS: kc, Connections: loop, Groups: cfg, Signer: cp, SignerID: "cp", Now: emu.Now}
	return &fixture{d: &handlers.Deps{Engine: eng, Store: st, Now: emu.Now}, st: st, agent: agent, loop: loop}
}

// loadGroups loads a key-group file registering agent in pool with group
// g1 (SYMMETRIC_DEFAULT, us-east-1) in that pool; groupExtra is appended to
// g1's entry.
func loadGroups(t *testing.T, pool, agent, pemKey, groupExtra string) (*groups.Config, error) {
	t.Helper()
	y := fmt.Sprintf(`version: 1
hsm_pools:
  - name: %q
    agents:
      - id: %q
        public_key: %q
groups:
  - name: g1
    key_spec: SYMMETRIC_DEFAULT
    alias: alias/g1
    account: "111122223333"
    region: us-east-1
    hsm_pool: %q
    schedule: rate(1 day)
    policy_file: policy.json
%s`, pool, agent, pemKey, pool, groupExtra)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"Version":"2012-10-17","Statement":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "g.yaml"), []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return groups.Load(filepath.Join(dir, "g.yaml"))
}

func load(t *testing.T, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRotateTriggers(t *testing.T) {
	cases := []struct {
		name     string
		payloads []string
		want     []store.Outcome // per payload; "" = ignored
	}{
		{"schedule", []string{"schedule.json"}, []store.Outcome{store.Started}},
		{"schedule delivered twice", []string{"schedule.json", "schedule.json"}, []store.Outcome{store.Started, store.Duplicate}},
		{"alarm direct", []string{"alarm-direct.json"}, []store.Outcome{store.Started}},
		{"alarm via EventBridge", []string{"alarm-eventbridge.json"}, []store.Outcome{store.Started}},
		{"one alarm change via both paths", []string{"alarm-direct.json", "alarm-eventbridge.json"}, []store.Outcome{store.Started, store.Duplicate}},
		{"alarm back to OK", []string{"alarm-eventbridge-ok.json"}, []store.Outcome{""}},
		{"schedule while an alarm rotation runs", []string{"alarm-direct.json", "schedule.json"}, []store.Outcome{store.Started, store.Skipped}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newDeps(t)
			for i, p := range tc.payloads {
				out, err := f.d.Rotate(context.Background(), load(t, p))
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				res := out.(handlers.RotateResult)
				if res.Outcome != tc.want[i] {
					t.Fatalf("%s: outcome %q (%+v), want %q", p, res.Outcome, res, tc.want[i])
				}
			}
		})
	}
}

func TestAlarmCooldown(t *testing.T) {
	f := newDeps(t)
	ctx := context.Background()
	out, err := f.d.Rotate(ctx, load(t, "alarm-direct.json"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.st.GetJob(ctx, out.(handlers.RotateResult).JobID)
	if err != nil {
		t.Fatal(err)
	}
	j.Reason = "test"
	if err := f.st.Advance(ctx, j, store.StateFailed, "test"); err != nil {
		t.Fatal(err)
	}
	// A new state change of the same alarm within the cooldown is skipped.
	var ev handlers.CloudWatchAlarmEvent
	_ = json.Unmarshal(load(t, "alarm-direct.json"), &ev)
	ev.AlarmData.State.Timestamp = "2026-01-02T03:10:00.000+0000"
	b, _ := json.Marshal(ev)
	out, err = f.d.Rotate(ctx, b)
	if err != nil || out.(handlers.RotateResult).Outcome != store.Skipped {
		t.Fatalf("alarm within cooldown: %+v %v, want skipped", out, err)
	}
}

func TestRotateRejectsBadPayloads(t *testing.T) {
	cases := map[string]string{
		"not json":          `{"group":`,
		"unknown shape":     `{"hello":"world"}`,
		"unknown field":     `{"group":"g1","trigger":"schedule","extra":1}`,
		"wrong trigger":     `{"group":"g1","trigger":"cron"}`,
		"unknown group":     `{"group":"nope","trigger":"schedule","id":"x"}`,
		"alarm of no group": `{"alarmArn":"arn:x","alarmData":{"alarmName":"other","state":{"value":"ALARM","timestamp":"t"}}}`,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			f := newDeps(t)
			if _, err := f.d.Rotate(context.Background(), json.RawMessage(payload)); err == nil {
				t.Fatal("accepted")
			}
			if h, _ := f.st.GroupHead(context.Background(), "g1"); h.ActiveJob != "" {
				t.Fatal("a bad payload started a job")
			}
		})
	}
}

func wsReq(route, conn, body string, headers map[string]string) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{
		Body: body, Headers: headers,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: route, ConnectionID: conn, EventType: "MESSAGE"},
	}
}

func TestConnectRefusesUnregisteredIdentities(t *testing.T) {
	cases := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"registered", map[string]string{"X-Keyferry-Agent-Id": "agent-1", "X-Keyferry-Pool": "p1"}, http.StatusOK},
		{"unknown agent", map[string]string{"X-Keyferry-Agent-Id": "agent-9", "X-Keyferry-Pool": "p1"}, http.StatusForbidden},
		{"wrong pool", map[string]string{"X-Keyferry-Agent-Id": "agent-1", "X-Keyferry-Pool": "p2"}, http.StatusForbidden},
		{"anonymous", nil, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newDeps(t)
			resp, err := f.d.Connect(context.Background(), wsReq("$connect", "c1", "", tc.headers))
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d err %v, want %d", resp.StatusCode, err, tc.status)
			}
			_, gerr := f.st.GetConnection(context.Background(), "c1")
			if recorded := gerr == nil; recorded != (tc.status == http.StatusOK) {
				t.Fatalf("connection recorded = %v with status %d", recorded, resp.StatusCode)
			}
			if tc.status == http.StatusOK {
				if _, err := f.d.Disconnect(context.Background(), wsReq("$disconnect", "c1", "", nil)); err != nil {
					t.Fatal(err)
				}
				if _, err := f.st.GetConnection(context.Background(), "c1"); !errors.Is(err, store.ErrNotFound) {
					t.Fatal("disconnect kept the connection")
				}
			}
		})
	}
}

// TestInvariant5BadAgentMessagesChangeNothing: malformed, unknown-action,
// unsigned and wrongly signed messages get a clear error and no state change.
func TestInvariant5BadAgentMessagesChangeNothing(t *testing.T) {
	f := newDeps(t)
	ctx := context.Background()
	if _, err := f.d.Connect(ctx, wsReq("$connect", "c1", "", map[string]string{"X-Keyferry-Agent-Id": "agent-1", "X-Keyferry-Pool": "p1"})); err != nil {
		t.Fatal(err)
	}
	rogue, _ := protocol.GenerateECDSASigner()
	rogueHello, _ := protocol.Seal(ctx, rogue, "agent-1", protocol.ActionHello, protocol.Hello{
		AgentID: "agent-1", Version: "x", HSMPool: "p1", IdentityPublicKey: rogue.PublicKeyDER(), SentAt: emu.Now(),
		Capabilities: []protocol.Capability{{KeySpec: "SYMMETRIC_DEFAULT", Algorithms: []keyspecAlg{"RSAES_OAEP_SHA_1"}, WrappingKeySpecs: []keyspecWKS{"RSA_4096"}}},
	})
	cases := []struct {
		name, body string
		status     int
	}{
		{"malformed JSON", `{"v":1,"action":`, http.StatusBadRequest},
		{"unknown action", `{"v":1,"action":"launch","payload":"e30=","sig":"AA==","signer":"a"}`, http.StatusBadRequest},
		{"unsigned wrap_result", `{"v":1,"action":"wrap_result","payload":"e30="}`, http.StatusBadRequest},
		{"hello signed by an unregistered key", string(rogueHello), http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := f.d.AgentMessage(ctx, wsReq("$default", "c1", tc.body, nil))
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s) err %v, want %d", resp.StatusCode, resp.Body, err, tc.status)
			}
			c, err := f.st.GetConnection(ctx, "c1")
			if err != nil || c.Hello || len(c.Capabilities) != 0 {
				t.Fatalf("connection changed: %+v %v", c, err)
			}
		})
	}
	// A genuine hello and heartbeat are accepted.
	hello, _ := protocol.Seal(ctx, f.agent, "agent-1", protocol.ActionHello, protocol.Hello{
		AgentID: "agent-1", Version: "x", HSMPool: "p1", IdentityPublicKey: f.agent.PublicKeyDER(), SentAt: emu.Now(),
		Capabilities: []protocol.Capability{{KeySpec: "SYMMETRIC_DEFAULT", Algorithms: []keyspecAlg{"RSAES_OAEP_SHA_1"}, WrappingKeySpecs: []keyspecWKS{"RSA_4096"}}},
	})
	if resp, _ := f.d.AgentMessage(ctx, wsReq("hello", "c1", string(hello), nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("genuine hello: %d %s", resp.StatusCode, resp.Body)
	}
	hb, _ := protocol.Seal(ctx, nil, "", protocol.ActionHeartbeat, protocol.Heartbeat{AgentID: "agent-1", Seq: 1, SentAt: emu.Now()})
	if resp, _ := f.d.AgentMessage(ctx, wsReq("heartbeat", "c1", string(hb), nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestOperatorRequests(t *testing.T) {
	f := newDeps(t)
	ctx := context.Background()
	cases := []struct {
		name string
		req  handlers.OperatorRequest
		ok   bool
	}{
		{"kill without confirm", handlers.OperatorRequest{Action: handlers.OpKill, Group: "g1", RequestID: "r1"}, false},
		{"unknown action", handlers.OperatorRequest{Action: "explode", Group: "g1", RequestID: "r2"}, false},
		{"unknown group", handlers.OperatorRequest{Action: handlers.OpRotate, Group: "nope", RequestID: "r3"}, false},
		{"no request id", handlers.OperatorRequest{Action: handlers.OpRotate, Group: "g1"}, false},
		{"force rotate", handlers.OperatorRequest{Action: handlers.OpRotate, Group: "g1", RequestID: "r4"}, true},
		{"kill confirmed", handlers.OperatorRequest{Action: handlers.OpKill, Group: "g1", RequestID: "r5", Confirm: "g1"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.d.Operator(ctx, tc.req)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, handlers.ErrBadRequest) {
				t.Fatalf("err %v is not ErrBadRequest", err)
			}
		})
	}
}
