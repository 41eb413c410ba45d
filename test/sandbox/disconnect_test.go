package sandbox

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyferry/keyferry/functions/store"
)

// TestDisconnectHandsOverUnderTheTemplatesIAM: $disconnect of a connection
// with a wrap request outstanding runs as the disconnect function's
// bootstrap under the template's IAM and hands the request over (the job
// back to PARAMS, on to the worker). The template once gave the function
// its connections table only, so on AWS the hand-over was denied
// dynamodb:Query on the jobs' by_state index (seen in the fleet bench's
// lambda.log) and waited for the sweeper.
func TestDisconnectHandsOverUnderTheTemplatesIAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sb, err := Start(ctx, Options{Functions: FunctionsRIE})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	// The pool's own agents say hello first: a hello resumes the jobs
	// outstanding at its agent, so the test's request is held by an agent
	// id no process uses.
	if err := sb.WaitAgents(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	const agent = "agent-of-the-closed-connection"
	st := sb.Deps.Store
	conn := &store.Connection{ID: "conn-disconnect-test", AgentID: agent, Pool: Pool, Hello: true, ConnectedAt: time.Now(), LastSeen: time.Now()}
	if err := st.PutConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	g := sb.Groups.Groups[0].Name
	j, _, err := st.StartJob(ctx, &store.Job{Group: g, TriggerID: "disconnect-test", Trigger: "operator", Kind: store.KindRotate}, 0)
	if err != nil {
		t.Fatal(err)
	}
	j.ConnectionID, j.AgentID, j.RequestID = conn.ID, agent, "req-disconnect-test"
	j.Deadline = time.Now().Add(time.Minute)
	if err := st.Advance(ctx, j, store.StateRequested, "test: a wrap request outstanding at "+conn.ID); err != nil {
		t.Fatal(err)
	}
	mark := len(sb.IAMLedger().Records())
	ev, _ := json.Marshal(events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		ConnectionID: conn.ID, RouteKey: "$disconnect", EventType: "DISCONNECT"}})
	out, err := sb.Runtime.Invoke(ctx, "keyferry-disconnect", ev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disconnect answered %s", out)
	for _, r := range sb.IAMLedger().Records()[mark:] {
		if r.Decision != "Allowed" && strings.Contains(r.Principal, "disconnect") {
			t.Errorf("IAM denied the disconnect function %s on %s", r.Action, r.Resource)
		}
	}
	got, err := st.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State == store.StateRequested && got.ConnectionID == conn.ID {
		t.Fatalf("job still REQUESTED at the closed connection %s: not handed over", conn.ID)
	}
	handed := false
	for _, tr := range got.History {
		handed = handed || (tr.From == store.StateRequested && tr.To == store.StateParams && strings.Contains(tr.Note, "connection closed"))
	}
	if !handed {
		t.Errorf("history has no hand-over REQUESTED->PARAMS for the closed connection: %+v", got.History)
	}
}
