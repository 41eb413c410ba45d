package handlers

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
)

// OperatorAction is what an operator asks for.
type OperatorAction string

// Operator actions.
const (
	OpRotate         OperatorAction = "rotate"      // force a rotation now
	OpSyncPolicy     OperatorAction = "sync-policy" // put the group's policy on every key
	OpSyncImport     OperatorAction = "sync-import" // re-import every live material from the HSM
	OpDeleteMaterial OperatorAction = "sync-delete" // delete imported material (same as kill)
	OpKill           OperatorAction = "kill"        // kill switch: DeleteImportedKeyMaterial everywhere
	OpRestore        OperatorAction = "restore"     // re-import killed material from the HSM
)

// OperatorRequest comes from the keyferry CLI through the operator function
// (never the rotate function). RequestID makes it idempotent. Kill and delete need
// Confirm equal to the group name.
type OperatorRequest struct {
	Action    OperatorAction `json:"action"`
	Group     string         `json:"group"`
	RequestID string         `json:"request_id"`
	Confirm   string         `json:"confirm,omitempty"`
}

// OperatorResponse reports what was done.
type OperatorResponse struct {
	Action  OperatorAction `json:"action"`
	Group   string         `json:"group"`
	Jobs    []RotateResult `json:"jobs,omitempty"`
	Changed int            `json:"changed,omitempty"`
}

// ErrBadRequest: the operator request is invalid (nothing changed).
var ErrBadRequest = errors.New("handlers: bad operator request")

// Operator runs an operator request.
func (d *Deps) Operator(ctx context.Context, req OperatorRequest) (OperatorResponse, error) {
	resp := OperatorResponse{Action: req.Action, Group: req.Group}
	if req.Group == "" || req.RequestID == "" {
		return resp, fmt.Errorf("%w: group and request_id are required", ErrBadRequest)
	}
	if _, ok := d.Engine.Groups.Group(req.Group); !ok {
		return resp, fmt.Errorf("%w: unknown group %q", ErrBadRequest, req.Group)
	}
	d.log().InfoContext(ctx, "operator request", "action", string(req.Action), "group", req.Group, "request", req.RequestID)
	jobs := func(js []*store.Job, err error) (OperatorResponse, error) {
		for _, j := range js {
			resp.Jobs = append(resp.Jobs, RotateResult{Group: j.Group, JobID: j.ID, State: j.State, Reason: j.Reason})
		}
		return resp, err
	}
	var err error
	switch req.Action {
	case OpRotate:
		var r RotateResult
		r, err = d.start(ctx, engine.TriggerRequest{Group: req.Group, Trigger: "operator", TriggerID: "operator/" + req.RequestID})
		resp.Jobs = append(resp.Jobs, r)
	case OpSyncPolicy:
		resp.Changed, err = d.Engine.SyncPolicy(ctx, req.Group)
	case OpSyncImport:
		return jobs(d.Engine.Reimport(ctx, req.Group, req.RequestID))
	case OpKill, OpDeleteMaterial:
		if req.Confirm != req.Group {
			return resp, fmt.Errorf("%w: %s needs confirm equal to the group name", ErrBadRequest, req.Action)
		}
		resp.Changed, err = d.Engine.Kill(ctx, req.Group)
	case OpRestore:
		return jobs(d.Engine.Restore(ctx, req.Group, req.RequestID))
	default:
		return resp, fmt.Errorf("%w: unknown action %q", ErrBadRequest, req.Action)
	}
	return resp, err
}
