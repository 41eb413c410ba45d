package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyferry/keyferry/functions/handlers"
)

// TestOperatorForceRotate: the operator function's rotate action rotates
// the group now; the same request id again is the same job.
func TestOperatorForceRotate(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	const group = "webhook-mac"
	g, _ := s.Groups.Group(group)
	before := makeProof(t, s, g)
	gens := len(generations(t, s, group))

	req := handlers.OperatorRequest{Action: handlers.OpRotate, Group: group, RequestID: "e2e-force-" + t.Name()}
	resp, err := s.Operator(testCtx(t), req)
	if err != nil || len(resp.Jobs) != 1 {
		t.Fatalf("operator rotate: %+v, %v", resp, err)
	}
	j := succeeded(t, s, resp.Jobs[0].JobID)
	if j.Trigger != "operator" {
		t.Errorf("job trigger %q, want operator", j.Trigger)
	}
	if got := len(generations(t, s, group)); got != gens+1 {
		t.Errorf("generations %d, want %d", got, gens+1)
	}
	if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != j.KeyARN || arn == before.keyARN {
		t.Errorf("alias %s -> %s, want the job's new key %s (was %s)", g.Alias, arn, j.KeyARN, before.keyARN)
	}
	before.mustCheck(t, s)

	again, err := s.Operator(testCtx(t), req)
	if err != nil || len(again.Jobs) != 1 || again.Jobs[0].JobID != j.ID {
		t.Errorf("repeated operator request: %+v, %v; want job %s again", again, err, j.ID)
	}
	if got := len(generations(t, s, group)); got != gens+1 {
		t.Errorf("repeated request rotated again: %d generations", got)
	}
}
