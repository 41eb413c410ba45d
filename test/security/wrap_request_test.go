package security

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/sandbox"
	"github.com/keyferry/keyferry/test/soak"
)

func mgmt() *apigatewaymanagementapi.Client {
	return apigatewaymanagementapi.NewFromConfig(aws.Config{Region: sandbox.Region,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: sandbox.CloudAccessKey, SecretAccessKey: sandbox.CloudSecretKey}, nil
		}),
		BaseEndpoint: aws.String(sb.Endpoints.Management)})
}

func hsmObjects(t *testing.T) int {
	t.Helper()
	h, err := soak.OpenHSM(context.Background(), sb.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	n, err := h.CountObjects(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInvariant2_AgentRefusesBadWrapRequests posts wrap_requests to the real
// agent through @connections (as if the control plane's channel were
// compromised): forged signature, expired, replayed, for a KMS key other
// than the one the HSM key is pinned to, and outside local policy. Each is
// answered with a typed error message and creates no HSM object.
func TestInvariant2_AgentRefusesBadWrapRequests(t *testing.T) {
	ctx := context.Background()
	conns := sb.Gateway.Connections()
	if len(conns) == 0 {
		t.Fatal("no agent connection")
	}
	connID := conns[0].ID
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wpk, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	forger, err := protocol.GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	eng := sb.Deps.Engine
	archive := firstRun["archive-data"]
	if archive == nil {
		t.Fatal("no first archive-data job")
	}
	base := func(id string) protocol.WrapRequest {
		n, _ := protocol.NewNonce()
		now := time.Now().UTC()
		return protocol.WrapRequest{
			RequestID: "req-sec-" + id, JobID: "job-sec-" + id, Nonce: n,
			Account: sandbox.Account, Region: sandbox.Region, Group: "archive-data",
			KeyARN:  "arn:aws:kms:us-east-1:" + sandbox.Account + ":key/00000000-0000-4000-8000-" + fmt.Sprintf("%012d", len(id)),
			KeySpec: keyspec.SymmetricDefault, Operation: protocol.OpGenerate, HSMLabel: "kf/archive-data/9" + fmt.Sprint(len(id)),
			WrappingAlgorithm: keyspec.RSAESOAEPSHA256, WrappingKeySpec: keyspec.WrapRSA2048, WrappingPublicKey: wpk,
			IssuedAt: now, ExpiresAt: now.Add(30 * time.Second),
		}
	}
	// A genuine request captured on the wire earlier (first rotation).
	var replay []byte
	for _, m := range tee.find(apigwemu.Outbound, `"wrap_request"`) {
		replay = m
		break
	}
	if replay == nil {
		t.Fatal("no wrap_request captured from the first rotation")
	}
	tests := []struct {
		name     string
		msg      func(t *testing.T) ([]byte, string)
		wantCode string
	}{
		{"forged signature", func(t *testing.T) ([]byte, string) {
			r := base("forged")
			b, err := protocol.Seal(ctx, forger, eng.SignerID, protocol.ActionWrapRequest, r)
			if err != nil {
				t.Fatal(err)
			}
			return b, r.RequestID
		}, "signature"},
		{"expired", func(t *testing.T) ([]byte, string) {
			r := base("expired")
			r.IssuedAt, r.ExpiresAt = r.IssuedAt.Add(-10*time.Minute), r.IssuedAt.Add(-9*time.Minute)
			b, err := protocol.Seal(ctx, eng.Signer, eng.SignerID, protocol.ActionWrapRequest, r)
			if err != nil {
				t.Fatal(err)
			}
			return b, r.RequestID
		}, "expired"},
		{"replayed", func(t *testing.T) ([]byte, string) {
			env, err := protocol.Decode(replay)
			if err != nil {
				t.Fatal(err)
			}
			var id string
			if i := strings.Index(string(env.Payload), `"request_id":"`); i >= 0 {
				id = strings.SplitN(string(env.Payload)[i+14:], `"`, 2)[0]
			}
			return replay, id
		}, "replayed"},
		{"wrong KMS key for a pinned HSM key", func(t *testing.T) ([]byte, string) {
			r := base("wrongkey")
			r.Operation, r.HSMLabel = protocol.OpRewrap, archive.HSMLabel
			b, err := protocol.Seal(ctx, eng.Signer, eng.SignerID, protocol.ActionWrapRequest, r)
			if err != nil {
				t.Fatal(err)
			}
			return b, r.RequestID
		}, "policy_refused"},
		{"policy: foreign account", func(t *testing.T) ([]byte, string) {
			r := base("policy-account")
			r.Account = "999999999999"
			r.KeyARN = strings.Replace(r.KeyARN, sandbox.Account, "999999999999", 1)
			b, err := protocol.Seal(ctx, eng.Signer, eng.SignerID, protocol.ActionWrapRequest, r)
			if err != nil {
				t.Fatal(err)
			}
			return b, r.RequestID
		}, "policy_refused"},
	}
	client := mgmt()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hsmObjects(t)
			msg, reqID := tt.msg(t)
			if reqID == "" {
				t.Fatal("no request id")
			}
			_, mark := tee.since(0)
			if _, err := client.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(connID), Data: msg}); err != nil {
				t.Fatal(err)
			}
			var answer []byte
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				ms, _ := tee.since(mark)
				for _, m := range ms {
					// An unverified request's fields are not echoed, so
					// the forged one is matched by the error alone.
					env, err := protocol.Decode(m)
					if err == nil && env.Action == protocol.ActionError && (strings.Contains(string(env.Payload), reqID) || tt.name == "forged signature") {
						answer = m
					}
				}
				if answer != nil {
					break
				}
			}
			if answer == nil {
				t.Fatalf("agent sent no answer naming %s", reqID)
			}
			env, err := protocol.Decode(answer)
			if err != nil {
				t.Fatal(err)
			}
			if env.Action != protocol.ActionError {
				t.Fatalf("agent answered %s, want error: %s", env.Action, answer)
			}
			if !strings.Contains(string(env.Payload), tt.wantCode) {
				t.Fatalf("agent error does not name %q: %s", tt.wantCode, env.Payload)
			}
			if after := hsmObjects(t); after != before {
				t.Fatalf("HSM objects %d -> %d: a refused request created or destroyed a key", before, after)
			}
			t.Logf("refused: %s", env.Payload)
		})
	}
}
