package security

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/soak"
)

// TestInvariant3_WrapResultFromUnregisteredIdentityIgnored: a wrap_result
// signed by a key that is not a registered agent identity (a rogue agent
// id, or the real agent's id with another key) is refused by the
// agent-message handler and leaves the job untouched.
func TestInvariant3_WrapResultFromUnregisteredIdentityIgnored(t *testing.T) {
	ctx := context.Background()
	j0 := firstRun["webhook-mac"]
	if j0 == nil {
		t.Fatal("no first webhook-mac job")
	}
	rogue, err := protocol.GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	conns := sb.Gateway.Connections()
	if len(conns) == 0 {
		t.Fatal("no agent connection")
	}
	for _, agentID := range []string{"rogue-agent", "sandbox-agent-1"} {
		t.Run(agentID, func(t *testing.T) {
			before, err := sb.Deps.Store.GetJob(ctx, j0.ID)
			if err != nil {
				t.Fatal(err)
			}
			res := protocol.WrapResult{
				RequestID: before.RequestID, JobID: before.ID, Nonce: before.Nonce, AgentID: agentID,
				KeyARN: before.KeyARN, HSMLabel: before.HSMLabel, HSMKeyID: before.HSMKeyID, KeySpec: "HMAC_256",
				WrappingAlgorithm: "RSAES_OAEP_SHA_256", WrappedMaterial: bytes.Repeat([]byte{0x42}, 512),
				ChallengeMAC: bytes.Repeat([]byte{1}, 32), CompletedAt: time.Now().UTC(),
			}
			msg, err := protocol.Seal(ctx, rogue, agentID, protocol.ActionWrapResult, res)
			if err != nil {
				t.Fatal(err)
			}
			var req events.APIGatewayWebsocketProxyRequest
			req.Body = string(msg)
			req.RequestContext.ConnectionID = conns[0].ID
			req.RequestContext.RouteKey = "wrap_result"
			resp, err := sb.Deps.AgentMessage(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode < 400 {
				t.Fatalf("rogue wrap_result accepted: %d %s", resp.StatusCode, resp.Body)
			}
			after, err := sb.Deps.Store.GetJob(ctx, j0.ID)
			if err != nil {
				t.Fatal(err)
			}
			if after.Version != before.Version || after.State != before.State || !bytes.Equal(after.WrappedMaterial, before.WrappedMaterial) {
				t.Fatalf("job changed: version %d -> %d, state %s -> %s", before.Version, after.Version, before.State, after.State)
			}
			t.Logf("refused with %d: %s", resp.StatusCode, resp.Body)
		})
	}
}

// TestInvariant1_NoPlaintextOnTheWireOrInLogs scans every websocket message
// of this suite's run (both directions, via the gateway's fault hook) and
// every log (agent.log, the audit log, the control plane's log, EMF
// metrics) for the plaintext of every key the KMS emulator imported
// (obtained through its test-only accessor): raw, hex, base64 and any 16
// consecutive bytes.
func TestInvariant1_NoPlaintextOnTheWireOrInLogs(t *testing.T) {
	hay := map[string][]byte{}
	for _, p := range []string{"agent.log", "agent/audit.jsonl", "metrics.emf.jsonl"} {
		b, err := readFile(sb.Dir, p)
		if err != nil {
			t.Fatal(err)
		}
		hay[p] = b
	}
	hay["control-plane and gateway log"] = []byte(gwLog.String())
	var wire []byte
	tee.mu.Lock()
	for _, m := range tee.msgs {
		wire = append(wire, m.Data...)
	}
	tee.mu.Unlock()
	hay["websocket"] = wire
	mats := map[string][]byte{}
	for _, m := range sb.Emulator.ImportedMaterials() {
		mats[m.KeyARN+"#"+m.KeyMaterialID] = m.Material
	}
	if len(mats) < len(sb.Groups.Groups) || len(wire) == 0 || len(hay["agent.log"]) == 0 {
		t.Fatalf("nothing to scan: %d materials, %d wire bytes, %d agent.log bytes", len(mats), len(wire), len(hay["agent.log"]))
	}
	if leaks := soak.ScanForMaterial(hay, mats); len(leaks) > 0 {
		t.Fatalf("plaintext key material found: %+v", leaks)
	}
	n := 0
	for _, b := range hay {
		n += len(b)
	}
	t.Logf("scanned %d bytes for %d materials: clean", n, len(mats))
}
