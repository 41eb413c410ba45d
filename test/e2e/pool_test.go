package e2e

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/sandbox"
)

// poolAgentID is the second agent of the sandbox pool in the pool tests.
const poolAgentID = "sandbox-agent-2"

// gatewayDrop, when set, drops inbound wrap_results of that connection at
// the gateway (the pool sandbox's fault hook): sent, never acknowledged.
var gatewayDrop atomic.Pointer[string]

// usePoolSandbox starts (once per process, closing another kind) a sandbox
// whose pool runs two agent processes on one token: the sandbox's own
// agent (A) and poolAgentID (B). Its functions run in this process, where
// B's identity is registered.
func usePoolSandbox(t *testing.T) (*sandbox.Sandbox, *sandbox.PoolAgent) {
	t.Helper()
	sbMu.Lock()
	defer sbMu.Unlock()
	if sbCur != nil && sbKind == kindPool {
		return sbCur, sbPoolAgent
	}
	closeSandbox()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{
		Functions: sandbox.FunctionsInProcess, AgentBinary: agentBinary, JobTimeout: jobTimeout, RequestTTL: requestTTL,
		GatewayFault: func(p apigwemu.FaultPoint) apigwemu.FaultAction {
			if c := gatewayDrop.Load(); c != nil && p.Direction == apigwemu.Inbound && p.ConnectionID == *c &&
				bytes.Contains(p.Data, []byte(`"`+string(protocol.ActionWrapResult)+`"`)) {
				return apigwemu.Drop
			}
			return apigwemu.Deliver
		},
	})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	b, err := s.AddPoolAgent(ctx, poolAgentID)
	if err != nil {
		s.Close()
		t.Fatalf("second agent: %v", err)
	}
	sbCur, sbKind, sbClock, sbPoolAgent = s, kindPool, &shiftClock{}, b
	return s, b
}

// agentConn returns the hello'd connection of agent id (nil if none).
func agentConn(t *testing.T, s *sandbox.Sandbox, id string) *store.Connection {
	t.Helper()
	cs, err := s.Deps.Store.ConnectionsInPool(testCtx(t), sandbox.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.AgentID == id && c.Hello {
			return c
		}
	}
	return nil
}

func waitAgentConn(t *testing.T, s *sandbox.Sandbox, id string) *store.Connection {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c := agentConn(t, s, id); c != nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s did not connect", id)
		}
	}
}

// setDraining marks (or clears) a connection as draining in the store, so
// the engine sends the next request to the other agent.
func setDraining(t *testing.T, s *sandbox.Sandbox, id string, on bool) {
	t.Helper()
	c := agentConn(t, s, id)
	if c == nil {
		t.Fatalf("agent %s not connected", id)
	}
	c.DrainingAt = time.Time{}
	if on {
		c.DrainingAt = time.Now()
	}
	if err := s.Deps.Store.PutConnection(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
}

// TestPoolFailoverAtEveryStep: agent A of a two-agent pool (two processes,
// one SoftHSM token) is SIGKILLed with a wrap request at each step: received
// (frozen with it in its socket), key generated (the generation's key is on
// the token, no result sent), and result sent but never acknowledged (the
// gateway loses A's wrap_result). Each time the job ends SUCCEEDED via agent
// B, the token holds exactly one key of the generation's label, and KMS's
// material equals it (HMAC of the HSM key = KMS GenerateMac).
func TestPoolFailoverAtEveryStep(t *testing.T) {
	s, b := usePoolSandbox(t)
	dumpAgentLog(t, s)
	const group = "webhook-mac"
	waitAgentConn(t, s, sandbox.AgentID)
	waitAgentConn(t, s, poolAgentID)
	tokenCfg, err := s.TokenConfig()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := hsm.Open(testCtx(t), tokenCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()

	steps := []string{"request received", "key generated", "result sent, not acknowledged"}
	for i, step := range steps {
		t.Run(strings.ReplaceAll(step, " ", "_"), func(t *testing.T) {
			a := waitAgentConn(t, s, sandbox.AgentID)
			waitAgentConn(t, s, poolAgentID)
			setDraining(t, s, poolAgentID, true) // the request goes to A
			pid := s.AgentPID()
			if step != steps[2] {
				if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			} else {
				gatewayDrop.Store(&a.ID)
			}
			r := schedule(t, s, group, "e2e-pool-"+time.Now().UTC().Format("150405.000"))
			j := reachState(t, s, r.JobID, store.StateRequested)
			if j.AgentID != sandbox.AgentID {
				t.Fatalf("request went to %s, want %s", j.AgentID, sandbox.AgentID)
			}
			switch step {
			case steps[1]:
				// A generated the generation's key and died before its result.
				if _, err := tok.Generate(testCtx(t), j.HSMLabel, "HMAC_256"); err != nil {
					t.Fatalf("generate %s as agent A would: %v", j.HSMLabel, err)
				}
			case steps[2]:
				// A answers; the gateway loses the answer.
				for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					if _, err := tok.Find(testCtx(t), j.HSMLabel); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("agent A never generated the key")
					}
				}
				time.Sleep(500 * time.Millisecond) // its result is sent (and dropped)
			}
			setDraining(t, s, poolAgentID, false)
			if err := s.KillAgent(); err != nil {
				t.Fatal(err)
			}
			syscall.Kill(-pid, syscall.SIGCONT)
			gatewayDrop.Store(nil)
			done := succeeded(t, s, r.JobID)
			if done.AgentID != poolAgentID {
				t.Errorf("job finished via %s, want %s", done.AgentID, poolAgentID)
			}
			handed := false
			for _, h := range done.History {
				handed = handed || strings.Contains(h.Note, "connection closed")
			}
			if !handed {
				t.Errorf("history does not show the hand-over on disconnect: %+v", done.History)
			}
			// Exactly one key of that label (Find refuses two) and KMS's
			// material is the HSM's.
			msg := []byte("pool failover " + step)
			want, err := tok.HMAC(testCtx(t), done.HSMLabel, msg)
			if err != nil {
				t.Fatalf("HSM key %s: %v (want exactly one key of the label)", done.HSMLabel, err)
			}
			out, err := s.KMS.GenerateMac(testCtx(t), &kms.GenerateMacInput{KeyId: aws.String(done.KeyARN), Message: msg, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Mac, want) {
				t.Errorf("KMS key %s MACs differently from HSM key %s", done.KeyARN, done.HSMLabel)
			}
			t.Logf("step %d (%s): %s SUCCEEDED via %s", i+1, step, done.ID, done.AgentID)
			if err := s.StartAgent(testCtx(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
	_ = b
}
