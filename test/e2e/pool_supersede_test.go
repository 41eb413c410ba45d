package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/sandbox"
)

// TestNewerHelloOfTheSameAgentClosesTheOlderOnTheGateway: on the
// production-shaped sandbox (functions under the RIE, IAM from the
// template), a second process configured as the same agent (same id, same
// identity key) connects: its verified hello closes the first's connection
// through @connections DeleteConnection, which IAM allows the hello route
// (and only it). Once the duplicate is gone, the agent is connected again
// and a rotation succeeds.
func TestNewerHelloOfTheSameAgentClosesTheOlderOnTheGateway(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	first := waitAgentConn(t, s, sandbox.AgentID)
	dup, err := s.DuplicateAgent()
	if err != nil {
		t.Fatal(err)
	}
	if err := dup.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			dup.Signal(syscall.SIGKILL)
		}
	}()
	// The first connection is closed by the control plane (not by its agent).
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		open := false
		for _, c := range s.Gateway.Connections() {
			open = open || c.ID == first.ID
		}
		if !open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection %s of %s still open 60 s after a second hello of the same agent", first.ID, sandbox.AgentID)
		}
	}
	if s.IAMLedger() != nil {
		allowed := false
		for _, r := range s.IAMLedger().Records() {
			if r.Action == "execute-api:ManageConnections" && strings.Contains(r.Resource, "/DELETE/@connections/") {
				if r.Decision != "Allowed" {
					t.Errorf("IAM %s %s for %s", r.Decision, r.Resource, r.Principal)
				}
				allowed = allowed || (r.Decision == "Allowed" && strings.Contains(strings.ToLower(r.Principal), "agentmessage"))
			}
		}
		if !allowed {
			var seen []string
			for _, r := range s.IAMLedger().Records() {
				if strings.HasPrefix(r.Action, "execute-api:") {
					seen = append(seen, r.Principal+" "+r.Action+" "+r.Resource+" "+r.Decision)
				}
			}
			t.Errorf("no DELETE @connections allowed to the hello route in the IAM ledger; execute-api records: %v", seen[max(0, len(seen)-8):])
		}
	}
	if err := dup.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stopped = true
	// The real agent reconnects (its backoff) and works.
	if err := s.WaitAgents(testCtx(t), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	r := schedule(t, s, "webhook-mac", "e2e-supersede-"+stamp())
	if done := succeeded(t, s, r.JobID); done.AgentID != sandbox.AgentID {
		t.Fatalf("job via %s", done.AgentID)
	}
}
