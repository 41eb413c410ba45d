package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/names"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Headers (or query parameters) the agent names itself with on $connect.
const (
	HeaderAgentID = "X-Keyferry-Agent-Id"
	HeaderPool    = "X-Keyferry-Pool"
	QueryAgentID  = "agent_id"
	QueryPool     = "hsm_pool"
)

func header(req events.APIGatewayWebsocketProxyRequest, name string) string {
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range req.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func respond(status int, msg string) events.APIGatewayProxyResponse {
	b, _ := json.Marshal(map[string]string{"message": msg})
	return events.APIGatewayProxyResponse{StatusCode: status, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}

// Connect records an agent connection; unregistered identities get 403 and
// nothing is recorded.
func (d *Deps) Connect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	rc := req.RequestContext
	agent := header(req, HeaderAgentID)
	if agent == "" {
		agent = req.QueryStringParameters[QueryAgentID]
	}
	pool := header(req, HeaderPool)
	if pool == "" {
		pool = req.QueryStringParameters[QueryPool]
	}
	log := d.log().With("connection", rc.ConnectionID, "agent", agent, "pool", pool, "principal", rc.Identity.UserArn, "source_ip", rc.Identity.SourceIP)
	if rc.ConnectionID == "" {
		log.WarnContext(ctx, "connect refused: no connection id")
		return respond(http.StatusBadRequest, "no connection id"), nil
	}
	if agent == "" || pool == "" {
		log.WarnContext(ctx, "connect refused: agent id or pool missing")
		return respond(http.StatusForbidden, "agent id and hsm pool are required ("+HeaderAgentID+", "+HeaderPool+")"), nil
	}
	if err := errors.Join(names.CheckAgentID(agent), names.CheckPool(pool)); err != nil {
		log.WarnContext(ctx, "connect refused: malformed identity", "error", err.Error())
		return respond(http.StatusForbidden, "agent id or hsm pool malformed: "+err.Error()), nil
	}
	if !d.Engine.Registered(pool, agent) {
		log.WarnContext(ctx, "connect refused: identity not registered")
		return respond(http.StatusForbidden, "agent "+agent+" is not registered in pool "+pool), nil
	}
	now := d.now()
	c := &store.Connection{ID: rc.ConnectionID, AgentID: agent, Pool: pool, ConnectedAt: now, LastSeen: now}
	if err := d.Store.PutConnection(ctx, c); err != nil {
		log.ErrorContext(ctx, "connect: store", "error", err.Error())
		return respond(http.StatusInternalServerError, "internal error"), nil
	}
	log.InfoContext(ctx, "agent connected")
	if n, err := d.Store.CountConnections(ctx); err == nil {
		d.Metrics.Emit(metrics.AgentsConnected, float64(n), metrics.Count, nil)
	}
	return respond(http.StatusOK, "connected"), nil
}

// Disconnect forgets the connection and hands the wrap requests
// outstanding at it to another agent of its pool (recorded here, run by
// the worker).
func (d *Deps) Disconnect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	id := req.RequestContext.ConnectionID
	c, _ := d.Store.GetConnection(ctx, id) // nil when never recorded (refused at $connect)
	if err := d.Store.DeleteConnection(ctx, id); err != nil {
		d.log().ErrorContext(ctx, "disconnect: store", "connection", id, "error", err.Error())
		return respond(http.StatusInternalServerError, "internal error"), nil
	}
	d.log().InfoContext(ctx, "agent disconnected", "connection", id)
	if c != nil {
		if err := d.Engine.ConnectionClosed(ctx, c); err != nil {
			// The sweeper re-asks at the job's deadline.
			d.log().WarnContext(ctx, "disconnect: hand-over incomplete", "connection", id, "agent", c.AgentID, "error", err.Error())
		}
	}
	return respond(http.StatusOK, "disconnected"), nil
}

// AgentMessage routes hello, wrap_result, error and heartbeat. Malformed,
// unsigned, wrongly signed, unknown-action, unknown-job and replayed
// messages get 400/403 with a clear message and change no state.
func (d *Deps) AgentMessage(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	connID := req.RequestContext.ConnectionID
	log := d.log().With("connection", connID, "route", req.RequestContext.RouteKey)
	env, err := protocol.Decode([]byte(req.Body))
	if err != nil {
		log.WarnContext(ctx, "agent message refused", "error", err.Error())
		return respond(http.StatusBadRequest, err.Error()), nil
	}
	switch env.Action {
	case protocol.ActionHello:
		err = d.Engine.HandleHello(ctx, connID, env)
	case protocol.ActionWrapResult:
		_, err = d.Engine.HandleWrapResult(ctx, connID, env)
	case protocol.ActionError:
		err = d.Engine.HandleAgentError(ctx, connID, env)
	case protocol.ActionHeartbeat:
		err = d.heartbeat(ctx, connID, env)
	case protocol.ActionDraining:
		err = d.Engine.HandleDraining(ctx, connID, env)
	default:
		err = errors.New("action " + string(env.Action) + " is not accepted from agents")
	}
	switch {
	case err == nil:
		return respond(http.StatusOK, "ok"), nil
	case errors.Is(err, engine.ErrRejected):
		log.WarnContext(ctx, "agent message rejected", "action", string(env.Action), "error", err.Error())
		return respond(http.StatusForbidden, err.Error()), nil
	default:
		log.WarnContext(ctx, "agent message failed", "action", string(env.Action), "error", err.Error())
		return respond(http.StatusBadRequest, err.Error()), nil
	}
}

func (d *Deps) heartbeat(ctx context.Context, connID string, env *protocol.Envelope) error {
	c, err := d.Store.GetConnection(ctx, connID)
	if err != nil {
		return errors.Join(engine.ErrRejected, err)
	}
	var v *protocol.Verifier
	if len(env.Sig) > 0 {
		if len(c.Identity) == 0 {
			return errors.Join(engine.ErrRejected, errors.New("signed heartbeat before hello"))
		}
		if v, err = protocol.ParseVerifierDER(c.Identity); err != nil {
			return err
		}
	}
	hb, err := protocol.OpenHeartbeat(env, v)
	if err != nil {
		return errors.Join(engine.ErrRejected, err)
	}
	if hb.AgentID != c.AgentID {
		return errors.Join(engine.ErrRejected, errors.New("heartbeat names agent "+hb.AgentID+", connection is "+c.AgentID))
	}
	c.LastSeen = d.now()
	c.GoneAt = time.Time{} // it just spoke: it is live whatever a post said
	if err := d.Store.PutConnection(ctx, c); err != nil {
		return err
	}
	// A live agent's heartbeat checks its pool for silent peers.
	if _, err := d.Engine.ReapSilent(ctx, c.Pool); err != nil {
		d.log().WarnContext(ctx, "heartbeat: silent-peer check incomplete", "pool", c.Pool, "error", err.Error())
	}
	return nil
}
