package apigwemu

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"
)

// TestConnectHandlerRefusal: a $connect integration that answers non-2xx
// or fails refuses the connection; no record is left and no $disconnect
// follows (the connection never existed).
func TestConnectHandlerRefusal(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		err        error
		wantStatus int
	}{
		{"401 from handler", 401, nil, http.StatusForbidden},
		{"403 from handler", 403, nil, http.StatusForbidden},
		{"500 from handler", 500, nil, http.StatusForbidden},
		{"302 from handler", 302, nil, http.StatusForbidden},
		{"handler error", 200, errors.New("dynamodb down"), http.StatusInternalServerError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, nil)
			connect, disc, dflt := newRecorder(tc.status), newRecorder(200), newRecorder(200)
			connect.err = tc.err
			emu.Route(RouteConnect, connect.handle)
			emu.Route(RouteDisconnect, disc.handle)
			emu.Route(RouteDefault, dflt.handle)
			c, resp, err := dial(t, nil, presign(t, emu, testSecret, time.Now(), time.Minute))
			if err == nil {
				_ = c.Close()
				t.Fatal("connection accepted")
			}
			if resp == nil || resp.StatusCode != tc.wantStatus {
				t.Fatalf("want HTTP %d, got %v", tc.wantStatus, resp)
			}
			if connect.count() != 1 {
				t.Fatalf("$connect invoked %d times", connect.count())
			}
			if len(emu.Connections()) != 0 || disc.count() != 0 || dflt.count() != 0 {
				t.Fatalf("refused connection left state: %d records, %d disconnects", len(emu.Connections()), disc.count())
			}
		})
	}
}

func TestConnectAcceptsAndNegotiatesSubprotocol(t *testing.T) {
	emu := startEmu(t, nil)
	emu.Route(RouteConnect, func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: 200, Headers: map[string]string{"Sec-WebSocket-Protocol": ev.Headers["Sec-WebSocket-Protocol"]}}, nil
	})
	d := &websocket.Dialer{Subprotocols: []string{"keyferry.v1"}, HandshakeTimeout: 10 * time.Second}
	c, _, err := dial(t, d, presign(t, emu, testSecret, time.Now(), time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subprotocol() != "keyferry.v1" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
}

func TestConnectBadHandshake(t *testing.T) {
	emu := startEmu(t, func(o *Options) { o.AllowUnauthenticated = true })
	connect := newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	tests := []struct {
		name    string
		headers map[string]string
		method  string
	}{
		{"plain GET", nil, http.MethodGet},
		{"wrong version", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, http.MethodGet},
		{"bad key", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"}, http.MethodGet},
		{"POST upgrade", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, http.MethodPost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http"+strings.TrimPrefix(emu.URL(), "ws"), nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
	if connect.count() != 0 || len(emu.Connections()) != 0 {
		t.Fatal("bad handshake reached $connect")
	}
}

// rawConn performs an unauthenticated handshake by hand so tests can send
// frames gorilla refuses to produce.
func rawConn(t *testing.T, emu *Emulator) (net.Conn, *bufio.Reader) {
	t.Helper()
	addr := strings.TrimPrefix(strings.TrimSuffix(emu.URL(), "/test"), "ws://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_, _ = nc.Write([]byte("GET /test HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return nc, br
}

// TestProtocolViolationsClose: malformed client input gets a close frame
// with the right code and reaches no handler (security invariant 5).
func TestProtocolViolationsClose(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"unmasked frame", appendFrame(nil, true, opText, []byte("hi")), CloseProtocolError},
		{"reserved bits", func() []byte { f := maskedFrame(true, opText, []byte("hi")); f[0] |= 0x40; return f }(), CloseProtocolError},
		{"continuation first", maskedFrame(true, opContinuation, []byte("hi")), CloseProtocolError},
		{"fragmented ping", maskedFrame(false, opPing, nil), CloseProtocolError},
		{"unknown opcode", maskedFrame(true, 0x3, []byte("hi")), CloseProtocolError},
		{"invalid utf-8 text", maskedFrame(true, opText, []byte{0xff, 0xfe}), CloseInvalidPayload},
		{"oversize declared length", maskedFrame(true, opBinary, make([]byte, MaxFrameSize+1)), CloseMessageTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, func(o *Options) { o.AllowUnauthenticated = true })
			dflt, disc := newRecorder(200), newRecorder(200)
			emu.Route(RouteDefault, dflt.handle)
			emu.Route(RouteDisconnect, disc.handle)
			nc, br := rawConn(t, emu)
			_, _ = nc.Write(tc.frame)
			_ = nc.SetReadDeadline(time.Now().Add(20 * time.Second))
			h, err := readFrameHeader(br, maxControlPayloadLen)
			if err != nil || h.opcode != opClose {
				t.Fatalf("want a close frame, got %+v %v", h, err)
			}
			p, _ := readPayload(br, h)
			code, _, _ := parseClosePayload(p)
			if code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			_ = nc.Close()
			if ev := disc.next(t); ev.RequestContext.DisconnectStatusCode != int64(tc.code) {
				t.Fatalf("$disconnect status %d", ev.RequestContext.DisconnectStatusCode)
			}
			if dflt.count() != 0 {
				t.Fatal("bad frame reached a handler")
			}
		})
	}
}
