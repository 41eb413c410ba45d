package apigwemu

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/gorilla/websocket"
)

const (
	testRegion    = "eu-west-1"
	testAccessKey = "AKIDEXAMPLEAGENT01"
	testSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testARN       = "arn:aws:iam::111122223333:user/keyferry-agent"
)

func testCreds() map[string]Credential {
	return map[string]Credential{testAccessKey: {SecretAccessKey: testSecret, PrincipalARN: testARN}}
}

func awsCreds(secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: secret}
}

// recorder is a handler that records every event it gets.
type recorder struct {
	mu     sync.Mutex
	events []events.APIGatewayWebsocketProxyRequest
	notify chan events.APIGatewayWebsocketProxyRequest
	resp   events.APIGatewayProxyResponse
	err    error
}

func newRecorder(status int) *recorder {
	return &recorder{notify: make(chan events.APIGatewayWebsocketProxyRequest, 64), resp: events.APIGatewayProxyResponse{StatusCode: status}}
}

func (r *recorder) handle(_ context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	resp, err := r.resp, r.err
	r.mu.Unlock()
	r.notify <- ev
	return resp, err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// next waits for the next recorded event (the bound only guards against a
// hung test; it is not a timing assertion).
func (r *recorder) next(t *testing.T) events.APIGatewayWebsocketProxyRequest {
	t.Helper()
	select {
	case ev := <-r.notify:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event recorded")
	}
	return events.APIGatewayWebsocketProxyRequest{}
}

// startEmu starts an emulator with test credentials; mutate tweaks options.
func startEmu(t *testing.T, mutate func(*Options)) *Emulator {
	t.Helper()
	o := Options{Stage: "test", Region: testRegion, Credentials: testCreds(), RefuseReplayedPresign: true, RouteResponses: true}
	if mutate != nil {
		mutate(&o)
	}
	emu := New(o)
	if err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	return emu
}

// presign presigns emu's URL with the test access key, signed now.
func presign(t *testing.T, emu *Emulator, secret string, signedAt time.Time, expires time.Duration) string {
	t.Helper()
	u, err := PresignURL(context.Background(), emu.URL(), awsCreds(secret), testRegion, expires, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// dial connects with gorilla's client; dialer may be nil.
func dial(t *testing.T, d *websocket.Dialer, u string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	c, resp, err := d.Dial(u, http.Header{"User-Agent": []string{"keyferry-agent/test"}})
	if c != nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, resp, err
}

// mustDial dials and fails the test on error.
func mustDial(t *testing.T, emu *Emulator) *websocket.Conn {
	t.Helper()
	c, _, err := dial(t, nil, presign(t, emu, testSecret, time.Now(), time.Minute))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

// readClose reads until the connection closes and returns the close error.
func readClose(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		t.Fatalf("read ended without a close frame: %v", err)
	}
}
