package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/keyferry/keyferry/functions/handlers"
)

// TestRotateFunctionRefusesOperatorActions: anyone who may invoke the rotate
// function (the Scheduler's role, the alarm principal) must not reach the
// kill switch or any other operator action through it. Each payload is
// refused with ErrOperatorViaRotate and leaves the group as it was.
func TestRotateFunctionRefusesOperatorActions(t *testing.T) {
	cases := map[string]string{
		"kill":        `{"operator":{"action":"kill","group":"g1","request_id":"r1","confirm":"g1"}}`,
		"sync-delete": `{"operator":{"action":"sync-delete","group":"g1","request_id":"r2","confirm":"g1"}}`,
		"rotate":      `{"operator":{"action":"rotate","group":"g1","request_id":"r3"}}`,
		"restore":     `{"operator":{"action":"restore","group":"g1","request_id":"r4"}}`,
		"bare":        `{"action":"kill","group":"g1","request_id":"r5","confirm":"g1"}`,
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			f := newDeps(t)
			ctx := context.Background()
			out, err := f.d.Rotate(ctx, json.RawMessage(payload))
			if !errors.Is(err, handlers.ErrOperatorViaRotate) || !errors.Is(err, handlers.ErrBadTrigger) {
				t.Fatalf("Rotate(%s) = %+v, %v; want ErrOperatorViaRotate", payload, out, err)
			}
			h, err := f.st.GroupHead(ctx, "g1")
			if err != nil {
				t.Fatal(err)
			}
			if h.Killed || h.ActiveJob != "" {
				t.Fatalf("state changed by a refused operator payload: killed=%v active job=%q", h.Killed, h.ActiveJob)
			}
		})
	}
}
