package apigwemu

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/gorilla/websocket"
)

var updateFixtures = flag.Bool("update", false, "rewrite testdata/*.json event fixtures")

var (
	idShape          = regexp.MustCompile(`^[A-Za-z0-9]{15}=$`)
	requestTimeShape = regexp.MustCompile(`^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$`)
)

// normalize replaces the per-run values of an event (ids, times, port,
// signature, websocket key) with placeholders after checking their shape.
func normalize(t *testing.T, ev events.APIGatewayWebsocketProxyRequest) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	rc := &ev.RequestContext
	for name, v := range map[string]string{"connectionId": rc.ConnectionID, "requestId": rc.RequestID, "extendedRequestId": rc.ExtendedRequestID} {
		if !idShape.MatchString(v) {
			t.Errorf("%s %q not shaped like API Gateway's", name, v)
		}
	}
	if !requestTimeShape.MatchString(rc.RequestTime) {
		t.Errorf("requestTime %q", rc.RequestTime)
	}
	if rc.RequestTimeEpoch < rc.ConnectedAt || rc.ConnectedAt <= 0 {
		t.Errorf("requestTimeEpoch %d before connectedAt %d", rc.RequestTimeEpoch, rc.ConnectedAt)
	}
	rc.ConnectionID, rc.RequestID, rc.ExtendedRequestID = "L0SM9cOFvHcCIhw=", "R1knPH17NjMFftw=", "R1knPH17NjMFftw="
	rc.RequestTime, rc.RequestTimeEpoch, rc.ConnectedAt = "01/Mar/2026:12:00:00 +0000", 1772366400000, 1772366400000
	if rc.MessageID != nil {
		if s, ok := rc.MessageID.(string); !ok || !idShape.MatchString(s) {
			t.Errorf("messageId %v", rc.MessageID)
		}
		rc.MessageID = "R1knPc2ntjMCFIA="
	}
	rc.DomainName = "127.0.0.1:PORT"
	fix := func(m map[string]string, k, v string) {
		if _, ok := m[k]; ok {
			m[k] = v
		}
	}
	fixMulti := func(m map[string][]string, k, v string) {
		if _, ok := m[k]; ok {
			m[k] = []string{v}
		}
	}
	for k, v := range map[string]string{"Host": "127.0.0.1:PORT", "X-Forwarded-Port": "PORT", "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
		fix(ev.Headers, k, v)
		fixMulti(ev.MultiValueHeaders, k, v)
	}
	fix(ev.QueryStringParameters, "X-Amz-Signature", "SIGNATURE")
	fixMulti(ev.MultiValueQueryStringParameters, "X-Amz-Signature", "SIGNATURE")
	return ev
}

// TestEventFixtures: the events the emulator builds match the committed
// fixtures (after normalising per-run values), and every fixture
// round-trips through the aws-lambda-go types without losing a field.
func TestEventFixtures(t *testing.T) {
	frozen := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	emu := startEmu(t, func(o *Options) {
		o.APIID = "kf0sandbx1"
		o.Clock = func() time.Time { return frozen }
	})
	connect, msg, disc := newRecorder(200), newRecorder(200), newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	emu.Route("wrap_result", msg.handle)
	emu.Route(RouteDisconnect, disc.handle)
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := dial(t, d, presign(t, emu, testSecret, frozen, 5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"action":"wrap_result","job":"j-1"}`)); err != nil {
		t.Fatal(err)
	}
	msgEv := msg.next(t)
	_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))
	got := map[string]events.APIGatewayWebsocketProxyRequest{
		"connect.json":    connect.next(t),
		"message.json":    msgEv,
		"disconnect.json": disc.next(t),
	}
	for name, ev := range got {
		t.Run(name, func(t *testing.T) {
			b, err := json.MarshalIndent(normalize(t, ev), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name)
			if *updateFixtures {
				if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONEq(t, want, b)

			var back events.APIGatewayWebsocketProxyRequest
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONEq(t, want, again)
		})
	}
}

func assertJSONEq(t *testing.T, want, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("event: %v", err)
	}
	wb, _ := json.Marshal(w)
	gb, _ := json.Marshal(g)
	if string(wb) != string(gb) {
		t.Fatalf("event differs from fixture\nwant %s\ngot  %s", wb, gb)
	}
}

func TestCallerIDFromARN(t *testing.T) {
	tests := []struct {
		arn, re string
	}{
		{"arn:aws:iam::111122223333:user/keyferry-agent", `^AIDA[0-9A-F]{16}$`},
		{"arn:aws:sts::111122223333:assumed-role/agent/session-1", `^AROA[0-9A-F]{16}:session-1$`},
		{"arn:aws:iam::111122223333:root", `^111122223333$`},
		{"not-an-arn", `^$`},
	}
	for _, tc := range tests {
		if got := callerIDFromARN(tc.arn); !regexp.MustCompile(tc.re).MatchString(got) {
			t.Errorf("callerIDFromARN(%q) = %q, want %s", tc.arn, got, tc.re)
		}
	}
	if accountFromARN("arn:aws:iam::111122223333:user/x") != "111122223333" {
		t.Error("accountFromARN")
	}
}
