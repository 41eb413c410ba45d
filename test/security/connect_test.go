package security

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/gorilla/websocket"

	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/sandbox"
)

// dial tries a websocket handshake and reports the HTTP status (101 on success).
func dial(t *testing.T, url string) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

func presign(t *testing.T, secret string, expires time.Duration, at time.Time) string {
	t.Helper()
	u, err := apigwemu.PresignURL(context.Background(), sb.Endpoints.WebSocket,
		aws.Credentials{AccessKeyID: sandbox.AgentAccessKey, SecretAccessKey: secret}, sandbox.Region, expires, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestInvariant5_ConnectWithoutValidPresignIsRefused: $connect with no
// signature, a wrong secret, an expired presign or a replayed presign is
// refused at the SigV4 check and leaves no connection record.
func TestInvariant5_ConnectWithoutValidPresignIsRefused(t *testing.T) {
	ctx := context.Background()
	replayed := presign(t, sandbox.AgentSecretKey, time.Minute, time.Now())
	// First use: the SigV4 check passes (the handler then refuses a dial
	// without the agent's signed identity parameters; the signature is spent).
	logStart := len(gwLog.String())
	first := dial(t, replayed)
	if l := gwLog.String()[logStart:]; strings.Contains(l, `"reason":"sigv4"`) {
		t.Fatalf("first use of a fresh presign failed SigV4: %s", l)
	}
	tests := []struct {
		name, url, wantErr string
	}{
		{"no signature", sb.Endpoints.WebSocket, "sigv4"},
		{"wrong secret", presign(t, "not-the-secret", time.Minute, time.Now()), "signature"},
		{"expired presign", presign(t, sandbox.AgentSecretKey, time.Minute, time.Now().Add(-10*time.Minute)), "expired"},
		{"replayed presign", replayed, "already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := sb.Deps.Store.CountConnections(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gwBefore := len(sb.Gateway.Connections())
			logBefore := len(gwLog.String())
			if code := dial(t, tt.url); code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", code)
			}
			refusal := gwLog.String()[logBefore:]
			if !strings.Contains(refusal, `"reason":"sigv4"`) || !strings.Contains(strings.ToLower(refusal), tt.wantErr) {
				t.Fatalf("gateway log does not show a SigV4 refusal mentioning %q:\n%s", tt.wantErr, refusal)
			}
			after, err := sb.Deps.Store.CountConnections(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after != before || len(sb.Gateway.Connections()) != gwBefore {
				t.Fatalf("connection records %d -> %d, gateway connections %d -> %d", before, after, gwBefore, len(sb.Gateway.Connections()))
			}
		})
	}
	t.Logf("first use of the replayed presign: status %d", first)
}
