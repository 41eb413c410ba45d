package apigwemu

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyferry/keyferry/test/logsink"
)

func TestPresignAcceptedWithSDKSigner(t *testing.T) {
	emu := startEmu(t, nil)
	connect := newRecorder(200)
	emu.Route(RouteConnect, connect.handle)
	c := mustDial(t, emu)
	ev := connect.next(t)
	if got := emu.Connections(); len(got) != 1 || got[0].ID != ev.RequestContext.ConnectionID {
		t.Fatalf("connections %+v, $connect saw %q", got, ev.RequestContext.ConnectionID)
	}
	id := ev.RequestContext.Identity
	if id.AccessKey != testAccessKey || id.UserArn != testARN || id.AccountID != "111122223333" || !strings.HasPrefix(id.Caller, "AIDA") || id.User != id.Caller {
		t.Fatalf("identity %+v not built from the IAM principal", id)
	}
	if id.SourceIP != "127.0.0.1" || id.UserAgent != "keyferry-agent/test" {
		t.Fatalf("identity source %q / %q", id.SourceIP, id.UserAgent)
	}
	_ = c
}

// TestConnectRefusals: every refusal answers 403 before the upgrade and
// leaves no connection record and no $connect invocation (security
// invariant 5: bad input changes no state).
func TestConnectRefusals(t *testing.T) {
	frozen := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		mutate func(*Options)
		url    func(t *testing.T, emu *Emulator) string
		// first, when set, is dialled once successfully before url.
		first bool
		want  error
	}{
		{"no signature", nil, func(t *testing.T, emu *Emulator) string { return emu.URL() }, false, ErrNoSignature},
		{"unknown access key", nil, func(t *testing.T, emu *Emulator) string {
			u, err := PresignURL(context.Background(), emu.URL(), aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: testSecret}, testRegion, time.Minute, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return u
		}, false, ErrUnknownAccessKey},
		{"wrong secret", nil, func(t *testing.T, emu *Emulator) string {
			return presign(t, emu, "not-the-secret", time.Now(), time.Minute)
		}, false, ErrSignatureMismatch},
		{"tampered query", nil, func(t *testing.T, emu *Emulator) string {
			return presign(t, emu, testSecret, time.Now(), time.Minute) + "&extra=1"
		}, false, ErrSignatureMismatch},
		{"wrong region", nil, func(t *testing.T, emu *Emulator) string {
			u, err := PresignURL(context.Background(), emu.URL(), awsCreds(testSecret), "us-east-1", time.Minute, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return u
		}, false, ErrMalformedPresign},
		{"expired presign", func(o *Options) { o.Clock = func() time.Time { return frozen } }, func(t *testing.T, emu *Emulator) string {
			return presign(t, emu, testSecret, frozen.Add(-61*time.Second), time.Minute)
		}, false, ErrPresignExpired},
		{"expired without X-Amz-Expires", func(o *Options) { o.Clock = func() time.Time { return frozen } }, func(t *testing.T, emu *Emulator) string {
			return presign(t, emu, testSecret, frozen.Add(-DefaultPresignWindow), 0)
		}, false, ErrPresignExpired},
		{"signed in the future", func(o *Options) { o.Clock = func() time.Time { return frozen } }, func(t *testing.T, emu *Emulator) string {
			return presign(t, emu, testSecret, frozen.Add(time.Hour), time.Minute)
		}, false, ErrPresignNotYetValid},
		{"replayed presign", nil, nil, true, ErrPresignReplayed},
		{"no credentials configured", func(o *Options) { o.Credentials = nil }, func(t *testing.T, emu *Emulator) string {
			return presign(t, emu, testSecret, time.Now(), time.Minute)
		}, false, ErrUnknownAccessKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logsink.Buffer
			emu := startEmu(t, func(o *Options) {
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
				if tc.mutate != nil {
					tc.mutate(o)
				}
			})
			connect, disc := newRecorder(200), newRecorder(200)
			emu.Route(RouteConnect, connect.handle)
			emu.Route(RouteDisconnect, disc.handle)
			var u string
			wantConnects := 0
			if tc.first {
				u = presign(t, emu, testSecret, time.Now(), time.Minute)
				c, _, err := dial(t, nil, u)
				if err != nil {
					t.Fatalf("first use refused: %v", err)
				}
				connect.next(t)
				_ = c.WriteMessage(8, []byte{0x03, 0xe8})
				_ = readCloseOrEOF(c)
				disc.next(t) // the first connection is gone
				wantConnects = 1
			} else {
				u = tc.url(t, emu)
			}
			c, resp, err := dial(t, nil, u)
			if err == nil {
				_ = c.Close()
				t.Fatal("connection accepted")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("want HTTP 403, got %v (%v)", resp, err)
			}
			if resp.Header.Get("Upgrade") != "" {
				t.Fatal("refusal carried an Upgrade header")
			}
			if n := len(emu.Connections()); n != 0 {
				t.Fatalf("%d connection records after a refusal", n)
			}
			if got := connect.count(); got != wantConnects {
				t.Fatalf("$connect invoked %d times, want %d", got, wantConnects)
			}
			if !strings.Contains(logs.String(), tc.want.Error()) {
				t.Fatalf("refusal reason %q not logged:\n%s", tc.want, logs.String())
			}
		})
	}
}

// readCloseOrEOF drains a client until it ends.
func readCloseOrEOF(c interface {
	ReadMessage() (int, []byte, error)
	SetReadDeadline(time.Time) error
}) error {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

func TestReplayAllowedWhenOptionOff(t *testing.T) {
	emu := startEmu(t, func(o *Options) { o.RefuseReplayedPresign = false })
	u := presign(t, emu, testSecret, time.Now(), time.Minute)
	for i := range 2 {
		if _, _, err := dial(t, nil, u); err != nil {
			t.Fatalf("use %d refused: %v (real API Gateway allows reuse within expiry)", i+1, err)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := newPresignVerifier(Options{Credentials: testCreds(), Clock: func() time.Time { return now }, RefuseReplayedPresign: true})
	good, err := PresignURL(context.Background(), "ws://127.0.0.1:9/test", awsCreds(testSecret), testRegion, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(key, val string) string {
		u, _ := url.Parse(good)
		q := u.Query()
		if val == "" {
			q.Del(key)
		} else {
			q.Set(key, val)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name string
		url  string
		want error
	}{
		{"no signature", edit("X-Amz-Signature", ""), ErrNoSignature},
		{"bad algorithm", edit("X-Amz-Algorithm", "AWS4-HMAC-SHA1"), ErrMalformedPresign},
		{"wrong service", edit("X-Amz-Credential", testAccessKey+"/20260301/eu-west-1/s3/aws4_request"), ErrMalformedPresign},
		{"scope date mismatch", edit("X-Amz-Credential", testAccessKey+"/20260302/eu-west-1/execute-api/aws4_request"), ErrMalformedPresign},
		{"bad expires", edit("X-Amz-Expires", "604801"), ErrMalformedPresign},
		{"host not signed", edit("X-Amz-SignedHeaders", "x-amz-date"), ErrMalformedPresign},
		{"signature flipped", edit("X-Amz-Signature", strings.Repeat("0", 64)), ErrSignatureMismatch},
		{"good", good, nil},
		{"replayed", good, ErrPresignReplayed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			_, err := v.verify(context.Background(), r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("verify = %v, want %v", err, tc.want)
			}
		})
	}
}
