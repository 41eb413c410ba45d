package engine

// One connection per agent: when a second connection of an agent says a
// hello that verifies (its registered identity, its pool), it is the
// agent's connection from then on and every earlier connection of that
// agent is closed. A hello that does not verify changes nothing, so a
// stranger cannot push the agent off by claiming its id.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	apigwtypes "github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"

	"github.com/keyferry/keyferry/functions/store"
)

// older reports whether connection o connected before c (ties by id, so
// of two connections exactly one is the older).
func older(o, c *store.Connection) bool {
	if !o.ConnectedAt.Equal(c.ConnectedAt) {
		return o.ConnectedAt.Before(c.ConnectedAt)
	}
	return o.ID < c.ID
}

// supersede closes the earlier connections of c's agent after c's hello
// verified. The requests outstanding at them that the hello lists as
// pending (the agent still finishes them, as when its tunnel recycles a
// connection) move to c; the others are handed over (HandOver). Each
// earlier connection is marked gone (no new request), then closed through
// @connections (DeleteConnection; its $disconnect then finds nothing left).
// It returns how many connections it closed.
func (b *agentBroker) supersede(ctx context.Context, c *store.Connection, pending []string) (int, error) {
	conns, err := b.store.ConnectionsInPool(ctx, c.Pool)
	if err != nil {
		return 0, err
	}
	var olds []*store.Connection
	for _, o := range conns {
		if o.ID != c.ID && o.AgentID == c.AgentID && older(o, c) {
			olds = append(olds, o)
		}
	}
	if len(olds) == 0 {
		return 0, nil
	}
	var errs []error
	if len(pending) > 0 {
		jobs, err := b.store.JobsInState(ctx, store.StateRequested, b.now().Add(365*24*time.Hour))
		if err != nil {
			return 0, err
		}
		for _, j := range jobs {
			if j.AgentID != c.AgentID || !slices.Contains(pending, j.RequestID) ||
				!slices.ContainsFunc(olds, func(o *store.Connection) bool { return o.ID == j.ConnectionID }) {
				continue
			}
			from := j.ConnectionID
			j.ConnectionID = c.ID
			if err := b.store.Save(ctx, j); err != nil && !errors.Is(err, store.ErrConflict) {
				errs = append(errs, err)
				continue
			}
			b.log().InfoContext(ctx, "request follows its agent to the new connection", "job", j.ID, "request", j.RequestID, "agent", c.AgentID, "from", from, "to", c.ID)
		}
	}
	n := 0
	for _, o := range olds {
		o.GoneAt = wallNow()
		if err := b.store.PutConnection(ctx, o); err != nil {
			errs = append(errs, err)
			continue
		}
		b.log().WarnContext(ctx, "agent connection superseded by a newer verified hello: closing it", "agent", c.AgentID, "pool", c.Pool,
			"connection", o.ID, "connected_at", o.ConnectedAt.Format(time.RFC3339Nano), "newer", c.ID)
		if _, err := b.HandOver(ctx, o, "superseded by its newer connection "+c.ID); err != nil {
			errs = append(errs, err)
		}
		_, err := b.conns.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{ConnectionId: aws.String(o.ID)})
		var gone *apigwtypes.GoneException
		switch {
		case errors.As(err, &gone):
			// Already closed; its $disconnect may never come: forget it.
			if err := b.store.DeleteConnection(ctx, o.ID); err != nil {
				errs = append(errs, err)
			}
		case err != nil:
			errs = append(errs, fmt.Errorf("close superseded connection %s of agent %s: %w", o.ID, c.AgentID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
