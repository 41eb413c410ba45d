package apigwemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"

	"github.com/keyferry/keyferry/test/logsink"
)

func TestRouteSelectionEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		binary    bool
		withDflt  bool
		wantRoute string
		wantReply string // substring of the reply, "" for none
	}{
		{"custom route", `{"action":"wrap_result","job":"j1"}`, false, true, "wrap_result", "reply:wrap_result"},
		{"unknown action to $default", `{"action":"bogus"}`, false, true, RouteDefault, "reply:$default"},
		{"non-json to $default", `hello`, false, true, RouteDefault, "reply:$default"},
		{"missing action to $default", `{"a":1}`, false, true, RouteDefault, "reply:$default"},
		{"binary to $default", `{"action":"wrap_result"}`, true, true, RouteDefault, "reply:$default"},
		{"no $default: Forbidden", `{"action":"bogus"}`, false, false, "", `"message":"Forbidden"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, nil)
			got := make(chan events.APIGatewayWebsocketProxyRequest, 4)
			h := func(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				got <- ev
				return events.APIGatewayProxyResponse{StatusCode: 200, Body: "reply:" + ev.RequestContext.RouteKey}, nil
			}
			emu.Route("wrap_result", h)
			if tc.withDflt {
				emu.Route(RouteDefault, h)
			}
			c := mustDial(t, emu)
			typ := websocket.TextMessage
			if tc.binary {
				typ = websocket.BinaryMessage
			}
			if err := c.WriteMessage(typ, []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			if tc.wantRoute != "" {
				var ev events.APIGatewayWebsocketProxyRequest
				select {
				case ev = <-got:
				case <-time.After(20 * time.Second):
					t.Fatal("handler not invoked")
				}
				rc := ev.RequestContext
				if rc.RouteKey != tc.wantRoute || rc.EventType != "MESSAGE" || rc.MessageID == nil || rc.MessageDirection != "IN" {
					t.Fatalf("event context %+v", rc)
				}
				if ev.IsBase64Encoded != tc.binary {
					t.Fatalf("IsBase64Encoded = %v", ev.IsBase64Encoded)
				}
				if !tc.binary && ev.Body != tc.body {
					t.Fatalf("body %q, want %q", ev.Body, tc.body)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, reply, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(reply), tc.wantReply) {
				t.Fatalf("reply %q, want it to contain %q", reply, tc.wantReply)
			}
		})
	}
}

func TestHandlerErrorMessage(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		timeout time.Duration
		want    string
	}{
		{"error", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("boom")
		}, 0, "Internal server error"},
		{"panic", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			panic("boom")
		}, 0, "Internal server error"},
		{"timeout", func(ctx context.Context, _ events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			<-ctx.Done()
			return events.APIGatewayProxyResponse{}, nil
		}, 50 * time.Millisecond, "Endpoint request timed out"},
		{"empty body sends nothing", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, func(o *Options) { o.IntegrationTimeout = tc.timeout })
			emu.Route(RouteDefault, tc.h)
			emu.Route("ping", func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				return events.APIGatewayProxyResponse{StatusCode: 200, Body: "pong"}, nil
			})
			c := mustDial(t, emu)
			if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				// Nothing comes back for x; the next reply is ping's.
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping"}`))
				want = "pong"
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, msg, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if string(msg) != "pong" {
					t.Fatalf("got %q, want only pong", msg)
				}
				return
			}
			var m map[string]string
			if err := json.Unmarshal(msg, &m); err != nil || m["message"] != want || m["connectionId"] == "" || m["requestId"] == "" {
				t.Fatalf("error message %q (%v)", msg, err)
			}
		})
	}
}

// TestOversize1009: frames over 32 KB and messages over 128 KB are closed
// with 1009 and no handler sees them (security invariant 5).
func TestOversize1009(t *testing.T) {
	tests := []struct {
		name     string
		writeBuf int // gorilla fragments at its write buffer size
		size     int
		want1009 bool
	}{
		{"frame at 32 KB accepted", 64 << 10, MaxFrameSize, false},
		{"frame over 32 KB", 64 << 10, MaxFrameSize + 1, true},
		{"message at 128 KB in 4 KB frames accepted", 4 << 10, MaxMessageSize, false},
		{"message over 128 KB in 4 KB frames", 4 << 10, MaxMessageSize + 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emu := startEmu(t, nil)
			dflt, disc := newRecorder(200), newRecorder(200)
			dflt.resp.Body = "ok"
			emu.Route(RouteDefault, dflt.handle)
			emu.Route(RouteDisconnect, disc.handle)
			d := &websocket.Dialer{WriteBufferSize: tc.writeBuf, HandshakeTimeout: 10 * time.Second}
			c, _, err := dial(t, d, presign(t, emu, testSecret, time.Now(), time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("a"), tc.size)); err != nil {
				t.Fatal(err)
			}
			if !tc.want1009 {
				ev := dflt.next(t)
				if len(ev.Body) != tc.size {
					t.Fatalf("handler got %d bytes, want %d", len(ev.Body), tc.size)
				}
				return
			}
			ce := readClose(t, c)
			if ce.Code != websocket.CloseMessageTooBig {
				t.Fatalf("close code %d, want 1009", ce.Code)
			}
			ev := disc.next(t)
			if ev.RequestContext.DisconnectStatusCode != CloseMessageTooBig {
				t.Fatalf("$disconnect status %d", ev.RequestContext.DisconnectStatusCode)
			}
			if dflt.count() != 0 {
				t.Fatal("oversize message reached a handler")
			}
		})
	}
}

func TestIdleTimeoutAndMaxAge(t *testing.T) {
	tests := []struct {
		name   string
		idle   time.Duration
		maxAge time.Duration
		// keep sends a data message (true) or a ping (false) every tick.
		keep      bool
		wantCause string
	}{
		{"idle with no traffic", 300 * time.Millisecond, time.Hour, false, "idle timeout"},
		{"pings do not reset idle", 300 * time.Millisecond, time.Hour, false, "idle timeout"},
		{"data resets idle until max age", 400 * time.Millisecond, 1500 * time.Millisecond, true, "maximum connection age"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logsink.Buffer
			emu := startEmu(t, func(o *Options) {
				o.IdleTimeout, o.MaxAge = tc.idle, tc.maxAge
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
			disc := newRecorder(200)
			emu.Route(RouteDisconnect, disc.handle)
			emu.Route(RouteDefault, newRecorder(200).handle)
			c := mustDial(t, emu)
			start := time.Now()
			stop := make(chan struct{})
			if i > 0 {
				go func() {
					tick := time.NewTicker(tc.idle / 4)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
							if tc.keep {
								_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"heartbeat"}`))
							} else {
								_ = c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
							}
						}
					}
				}()
			}
			ce := readClose(t, c)
			close(stop)
			lived := time.Since(start)
			if ce.Code != websocket.CloseGoingAway {
				t.Fatalf("close code %d, want 1001", ce.Code)
			}
			ev := disc.next(t)
			if ev.RequestContext.EventType != "DISCONNECT" || ev.RequestContext.DisconnectStatusCode != CloseGoingAway {
				t.Fatalf("$disconnect context %+v", ev.RequestContext)
			}
			if !strings.Contains(logs.String(), tc.wantCause) {
				t.Fatalf("cause %q not logged", tc.wantCause)
			}
			// Ordering, not timing: the connection outlived the idle
			// timeout only when data kept it alive.
			if tc.keep && lived < tc.idle*2 {
				t.Fatalf("closed after %v although data kept it active", lived)
			}
			if len(emu.Connections()) != 0 {
				t.Fatal("connection record left behind")
			}
		})
	}
}

func TestClientCloseInvokesDisconnect(t *testing.T) {
	emu := startEmu(t, nil)
	connect, disc := newRecorder(200), newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	emu.Route(RouteDisconnect, disc.handle)
	c := mustDial(t, emu)
	id := connect.next(t).RequestContext.ConnectionID
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "agent recycling"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	ev := disc.next(t)
	rc := ev.RequestContext
	if rc.ConnectionID != id || rc.RouteKey != RouteDisconnect || rc.DisconnectStatusCode != 4000 || rc.DisconnectReason == nil || *rc.DisconnectReason != "agent recycling" {
		t.Fatalf("$disconnect context %+v", rc)
	}
	if len(emu.Connections()) != 0 {
		t.Fatal("connection record left behind")
	}
}

func TestServerShutdownInvokesDisconnect(t *testing.T) {
	emu := startEmu(t, nil)
	disc := newRecorder(200)
	emu.Route(RouteDisconnect, disc.handle)
	c := mustDial(t, emu)
	done := make(chan *websocket.CloseError, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		errors.As(err, &ce)
		done <- ce
	}()
	if err := emu.Close(); err != nil {
		t.Fatal(err)
	}
	if disc.count() != 1 {
		t.Fatalf("$disconnect invoked %d times by Close", disc.count())
	}
	if ce := <-done; ce == nil || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("client saw %v, want 1001", ce)
	}
}

func TestAbnormalDropInvokesDisconnect1006(t *testing.T) {
	emu := startEmu(t, nil)
	disc := newRecorder(200)
	emu.Route(RouteDisconnect, disc.handle)
	c := mustDial(t, emu)
	_ = c.NetConn().Close() // no close frame
	ev := disc.next(t)
	if ev.RequestContext.DisconnectStatusCode != CloseAbnormal {
		t.Fatalf("$disconnect status %d, want 1006", ev.RequestContext.DisconnectStatusCode)
	}
	if len(emu.Connections()) != 0 {
		t.Fatal("connection record left behind")
	}
}

// TestNoRouteResponseByDefault: without a route response (keyferry's stack
// configures none), API Gateway does not send a handler's body back.
func TestNoRouteResponseByDefault(t *testing.T) {
	emu := startEmu(t, func(o *Options) { o.RouteResponses = false })
	called := make(chan struct{}, 1)
	emu.Route("$default", func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		called <- struct{}{}
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "should not be echoed"}, nil
	})
	ws := mustDial(t, emu)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"x"}`)); err != nil {
		t.Fatal(err)
	}
	<-called
	ws.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, msg, err := ws.ReadMessage(); err == nil {
		t.Fatalf("client received %q without a route response", msg)
	}
}
