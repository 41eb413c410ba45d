//go:build cgo

package daemon

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/keyferry/keyferry/agent/tunnel"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/shared/wrapping"
	"github.com/keyferry/keyferry/test/logsink"
)

// rawConn records every byte the agent sends.
type rawConn struct {
	net.Conn
	rec *logsink.Buffer
}

func (c rawConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.Write(p[:n])
	return n, err
}

type rawListener struct {
	net.Listener
	rec *logsink.Buffer
}

func (l rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return rawConn{Conn: c, rec: l.rec}, nil
}

// cpServer is a loopback stand-in for API Gateway + control plane.
type cpServer struct {
	srv   *httptest.Server
	raw   *logsink.Buffer
	mu    sync.Mutex
	conns []*websocket.Conn
	in    chan cpMsg
	// wire holds every message the agent sent, unmasked, followed by its
	// decoded payload.
	wire *logsink.Buffer
}

type cpMsg struct {
	conn int
	env  *protocol.Envelope
	raw  []byte
}

func newCPServer(t *testing.T) *cpServer {
	s := &cpServer{raw: &logsink.Buffer{}, in: make(chan cpMsg, 100), wire: &logsink.Buffer{}}
	up := websocket.Upgrader{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, ws)
		id := len(s.conns)
		s.mu.Unlock()
		for {
			_, m, err := ws.ReadMessage()
			if err != nil {
				return
			}
			s.wire.Write(m)
			env, err := protocol.Decode(m)
			if err != nil {
				t.Errorf("agent sent an undecodable message: %v", err)
				continue
			}
			s.wire.Write(env.Payload)
			s.in <- cpMsg{conn: id, env: env, raw: m}
		}
	}))
	s.srv.Listener = rawListener{Listener: s.srv.Listener, rec: s.raw}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *cpServer) conn(i int) *websocket.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[i-1]
}

func (s *cpServer) next(t *testing.T, action protocol.Action) cpMsg {
	t.Helper()
	for {
		select {
		case m := <-s.in:
			if m.env.Action == action {
				return m
			}
			if m.env.Action == protocol.ActionError {
				t.Fatalf("agent sent error while waiting for %s: %s", action, m.env.Payload)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s from the agent within 60s", action)
		}
	}
}

func (a *agent) startTunnel(t *testing.T, s *cpServer) (cancel func()) {
	t.Helper()
	tun, err := tunnel.New(tunnel.Config{
		Endpoint: "ws" + s.srv.URL[len("http"):] + "/prod", HeartbeatInterval: 100 * time.Millisecond, MaxConnectionAge: time.Hour,
		BackoffInitial: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, HandshakeTimeout: 5 * time.Second,
		Hello: a.d.Hello, Heartbeat: a.d.Heartbeat, Handle: a.d.Handle, Observer: a.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.d.SetSender(tun)
	ctx, c := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.d.Serve(ctx, tun, 30*time.Second) }()
	return func() {
		c()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

// TestNoPlaintextOnWireOrInLogs is security invariant 1 for the agent: the
// test owns the KMS wrapping private key, so it learns each generated key's
// plaintext by unwrapping the result; then it scans every byte the agent
// sent on the websocket (raw frames and decoded messages), every log line
// and the audit log for that plaintext in raw, hex and base64 form.
func TestInvariantNoPlaintextKeyMaterialOnWireOrInLogs(t *testing.T) {
	a := newAgent(t, nil)
	s := newCPServer(t)
	stop := a.startTunnel(t, s)
	hello := s.next(t, protocol.ActionHello)
	idv, _ := protocol.ParseVerifierDER(a.id.PublicDER())
	h, err := protocol.OpenHello(hello.env, idv, time.Now(), time.Minute)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	if !bytes.Equal(h.IdentityPublicKey, a.id.PublicDER()) || len(h.Capabilities) == 0 {
		t.Fatalf("hello %+v", h)
	}
	challenge := bytes.Repeat([]byte{0x5a}, 32)
	reqs := []protocol.WrapRequest{
		a.requestStruct(func(r *protocol.WrapRequest) { r.HSMLabel = "kf/payments/1" }),
		a.requestStruct(func(r *protocol.WrapRequest) {
			r.KeySpec, r.Challenge, r.Group = keyspec.HMAC256, challenge, "tokens"
			r.KeyARN = "arn:aws:kms:eu-west-1:111122223333:key/22222222-12ab-34cd-56ef-1234567890ab"
		}),
		// SoftHSM 2.6.1 cannot wrap EC private keys for KMS (CKR_KEY_NOT_WRAPPABLE
		// with OAEP; its KWP pads PKCS#8 before RFC 5649): agent/hsm reports it.
		a.requestStruct(func(r *protocol.WrapRequest) {
			r.Group, r.HSMLabel = "tokens", "kf/tokens/5"
			r.KeyARN = "arn:aws:kms:eu-west-1:111122223333:key/33333333-12ab-34cd-56ef-1234567890ab"
		}),
	}
	for _, r := range reqs {
		if err := s.conn(1).WriteMessage(websocket.TextMessage, a.sealRequest(t, a.cp, r)); err != nil {
			t.Fatal(err)
		}
	}
	var secrets, wrappedSeen [][]byte
	for range reqs {
		m := s.next(t, protocol.ActionWrapResult)
		res, err := protocol.OpenWrapResult(m.env, idv, time.Now(), time.Minute)
		if err != nil {
			t.Fatalf("wrap_result: %v", err)
		}
		material, err := wrapping.Unwrap(wk3072Priv, res.WrappingAlgorithm, res.WrappedMaterial)
		if err != nil {
			t.Fatalf("unwrap %s: %v", res.KeySpec, err)
		}
		secrets = append(secrets, material)
		wrappedSeen = append(wrappedSeen, res.WrappedMaterial)
		switch res.KeySpec {
		case keyspec.HMAC256:
			mac := hmac.New(sha256.New, material)
			mac.Write(challenge)
			if !hmac.Equal(mac.Sum(nil), res.ChallengeMAC) {
				t.Fatal("challenge MAC does not match the unwrapped HMAC key")
			}
		case keyspec.SymmetricDefault:
			if len(material) != 32 {
				t.Fatalf("symmetric material %d bytes", len(material))
			}
		}
	}
	stop()
	auditBytes, err := os.ReadFile(a.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	pinBytes, _ := os.ReadFile(a.pinsPath)
	haystacks := map[string][]byte{
		"raw websocket stream": s.raw.Bytes(), "websocket messages and decoded payloads": s.wire.Bytes(),
		"logs": a.logs.Bytes(), "audit log": auditBytes, "pins file": pinBytes,
	}
	if len(s.wire.Bytes()) < 1000 || len(a.logs.Bytes()) < 1000 || len(auditBytes) < 500 {
		t.Fatalf("scan would be vacuous: %d wire bytes, %d log bytes, %d audit bytes", len(s.wire.Bytes()), len(a.logs.Bytes()), len(auditBytes))
	}
	for i, secret := range secrets {
		forms := map[string][]byte{
			"raw": secret, "hex": []byte(hex.EncodeToString(secret)), "HEX": bytes.ToUpper([]byte(hex.EncodeToString(secret))),
			"base64": []byte(base64.StdEncoding.EncodeToString(secret)), "base64url": []byte(base64.RawURLEncoding.EncodeToString(secret)),
			"prefix16": secret[:16],
		}
		for where, hay := range haystacks {
			for form, needle := range forms {
				if bytes.Contains(hay, needle) {
					t.Errorf("key %d plaintext (%s) found in %s", i, form, where)
				}
			}
		}
	}
	// The scan can fail: the wrapped blobs (base64) are on the wire.
	if !bytes.Contains(s.wire.Bytes(), []byte(base64.StdEncoding.EncodeToString(wrappedSeen[0]))) {
		t.Fatal("scan cannot see message contents: a wrapped blob is missing from the captured wire")
	}
}

// gatedHSM holds Wrap until released (the "HSM" is busy across a drop).
type gatedHSM struct {
	HSM
	gate chan struct{}
}

func (g *gatedHSM) Wrap(ctx context.Context, label string, der []byte, alg keyspec.WrappingAlgorithm) ([]byte, error) {
	<-g.gate
	return g.HSM.Wrap(ctx, label, der, alg)
}

var _ HSM = (*gatedHSM)(nil)

// TestRequestAcceptedBeforeDropAnsweredAfterReconnect: the server drops the
// connection right after the agent accepted a request; the reconnect hello
// lists the request as pending and the result arrives on the new connection.
func TestRequestAcceptedBeforeDropAnsweredAfterReconnect(t *testing.T) {
	a := newAgent(t, nil)
	g := &gatedHSM{HSM: a.hsm, gate: make(chan struct{})}
	a.d.cfg.HSM = g
	s := newCPServer(t)
	stop := a.startTunnel(t, s)
	defer stop()
	s.next(t, protocol.ActionHello)
	r := a.requestStruct(nil)
	if err := s.conn(1).WriteMessage(websocket.TextMessage, a.sealRequest(t, a.cp, r)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(a.d.Pending()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("request never accepted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.conn(1).UnderlyingConn().Close() // network drop
	hello := s.next(t, protocol.ActionHello)
	if hello.conn != 2 {
		t.Fatalf("hello on conn %d", hello.conn)
	}
	idv, _ := protocol.ParseVerifierDER(a.id.PublicDER())
	h, err := protocol.OpenHello(hello.env, idv, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Pending) != 1 || h.Pending[0] != r.RequestID {
		t.Fatalf("reconnect hello pending %v, want [%s]", h.Pending, r.RequestID)
	}
	close(g.gate)
	m := s.next(t, protocol.ActionWrapResult)
	res, err := protocol.OpenWrapResult(m.env, idv, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m.conn != 2 || res.RequestID != r.RequestID {
		t.Fatalf("result for %s on conn %d", res.RequestID, m.conn)
	}
	if _, err := wrapping.Unwrap(wk3072Priv, res.WrappingAlgorithm, res.WrappedMaterial); err != nil {
		t.Fatalf("result does not unwrap: %v", err)
	}
}

// TestGracefulShutdownFinishesInFlightWrap: SIGTERM (context cancel) while
// a wrap is running: the wrap completes, its result reaches the server,
// then the connection closes.
func TestGracefulShutdownFinishesInFlightWrap(t *testing.T) {
	a := newAgent(t, nil)
	g := &gatedHSM{HSM: a.hsm, gate: make(chan struct{})}
	a.d.cfg.HSM = g
	s := newCPServer(t)
	stop := a.startTunnel(t, s)
	s.next(t, protocol.ActionHello)
	r := a.requestStruct(nil)
	if err := s.conn(1).WriteMessage(websocket.TextMessage, a.sealRequest(t, a.cp, r)); err != nil {
		t.Fatal(err)
	}
	for len(a.d.Pending()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("shutdown did not wait for the in-flight wrap")
	default:
	}
	// A request arriving during shutdown is refused, not started.
	late := a.requestStruct(nil)
	if err := s.conn(1).WriteMessage(websocket.TextMessage, a.sealRequest(t, a.cp, late)); err != nil {
		t.Fatal(err)
	}
	close(g.gate)
	var gotResult, gotRefusal bool
	for !gotResult || !gotRefusal {
		select {
		case m := <-s.in:
			switch {
			case m.env.Action == protocol.ActionWrapResult && bytes.Contains(m.env.Payload, []byte(r.RequestID)):
				gotResult = m.conn == 1
			case m.env.Action == protocol.ActionError && bytes.Contains(m.env.Payload, []byte("shutting down")):
				gotRefusal = true
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("result %v, late refusal %v", gotResult, gotRefusal)
		}
	}
	<-stopped
	if n := a.hsm.generates.Load(); n != 1 {
		t.Fatalf("%d keys generated; the late request must not start", n)
	}
}
