package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/test/lambdarun"
)

// Invoke calls function fn (its short name: rotate, operator, keepalive,
// worker) the way AWS would: its bootstrap behind the RIE (FunctionsRIE),
// or its Go handler in this process (FunctionsInProcess). A function error
// comes back as a *FunctionError.
func (s *Sandbox) Invoke(ctx context.Context, fn string, payload []byte) (json.RawMessage, error) {
	if s.Runtime != nil {
		out, err := s.Runtime.Invoke(ctx, "keyferry-"+fn, payload)
		var fe *lambdarun.Error
		if errors.As(err, &fe) {
			return nil, &FunctionError{Function: fe.Function, Type: fe.Doc.Type, Message: fe.Doc.Message}
		}
		return out, err
	}
	var out any
	var err error
	switch fn {
	case "rotate":
		out, err = s.Deps.Rotate(ctx, payload)
	case "keepalive":
		out, err = s.Deps.Keepalive(ctx, payload)
	case "operator":
		var req handlers.OperatorRequest
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, fmt.Errorf("sandbox: operator payload: %w", err)
		}
		out, err = s.Deps.Operator(ctx, req)
	default:
		return nil, fmt.Errorf("sandbox: no in-process function %q", fn)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// FunctionError is a function's error document (errorType, errorMessage)
// as Lambda returns it. It matches the handlers' sentinel errors by their
// text, the only part that crosses the process boundary.
type FunctionError struct {
	Function, Type, Message string
}

func (e *FunctionError) Error() string { return e.Function + ": " + e.Message }

// Is reports whether the function's message carries target's text (the
// handlers wrap their sentinels with %w, so the message contains it).
func (e *FunctionError) Is(target error) bool {
	return target != nil && strings.Contains(e.Message, target.Error())
}

// Operator sends an operator request to the operator function.
func (s *Sandbox) Operator(ctx context.Context, req handlers.OperatorRequest) (handlers.OperatorResponse, error) {
	b, _ := json.Marshal(req)
	out, err := s.Invoke(ctx, "operator", b)
	if err != nil {
		return handlers.OperatorResponse{Action: req.Action, Group: req.Group}, err
	}
	var resp handlers.OperatorResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return resp, fmt.Errorf("sandbox: operator answered %q: %w", out, err)
	}
	return resp, nil
}

// Keepalive runs the keepalive function (re-imports, then the sweeper).
func (s *Sandbox) Keepalive(ctx context.Context, payload []byte) (handlers.KeepaliveResult, error) {
	if payload == nil {
		payload = []byte(`{"task":"keepalive"}`)
	}
	out, err := s.Invoke(ctx, "keepalive", payload)
	if err != nil {
		return handlers.KeepaliveResult{}, err
	}
	var res handlers.KeepaliveResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("sandbox: keepalive answered %q: %w", out, err)
	}
	return res, nil
}

// RotatePayload delivers payload (a Scheduler input or an alarm event) to
// the rotate function.
func (s *Sandbox) RotatePayload(ctx context.Context, payload []byte) (handlers.RotateResult, error) {
	out, err := s.Invoke(ctx, "rotate", payload)
	if err != nil {
		return handlers.RotateResult{}, err
	}
	var res handlers.RotateResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("sandbox: rotate answered %q: %w", out, err)
	}
	return res, nil
}
