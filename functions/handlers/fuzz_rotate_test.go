package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/shared/groups"
)

// FuzzRotatePayload feeds arbitrary bytes to the rotate function's payload
// decoder (Scheduler payload, direct CloudWatch alarm, EventBridge alarm
// event; an operator request is refused). With no groups configured, nothing may start a
// job: every input is either refused with an error or explicitly ignored,
// and nothing panics (invariant 5: bad input gets a clear error and changes
// no state; the engine has no store, so any state change would panic).
func FuzzRotatePayload(f *testing.F) {
	for _, name := range []string{"schedule.json", "alarm-direct.json", "alarm-eventbridge.json", "alarm-eventbridge-ok.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	d := &Deps{
		Engine: &engine.Engine{Groups: &groups.Config{}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))},
		Log:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := d.Rotate(context.Background(), payload)
		if err != nil {
			if out != nil {
				if r, ok := out.(RotateResult); ok && r.JobID != "" {
					t.Fatalf("error %v but a job %s", err, r.JobID)
				}
			}
			return
		}
		switch r := out.(type) {
		case RotateResult:
			if r.Ignored == "" || r.JobID != "" {
				t.Fatalf("payload %q accepted with no groups configured: %+v", payload, r)
			}
		default:
			t.Fatalf("payload %q: unexpected success %T %+v", payload, out, out)
		}
	})
}

func TestFuzzRotatePayloadRefusesUnknownGroup(t *testing.T) {
	d := &Deps{Engine: &engine.Engine{Groups: &groups.Config{}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))}}
	_, err := d.Rotate(context.Background(), []byte(`{"group":"nope","trigger":"schedule","id":"x"}`))
	if !errors.Is(err, engine.ErrUnknownGroup) {
		t.Fatalf("err = %v, want ErrUnknownGroup", err)
	}
	_, err = d.Rotate(context.Background(), []byte(`[1,2]`))
	if !errors.Is(err, ErrBadTrigger) {
		t.Fatalf("err = %v, want ErrBadTrigger", err)
	}
}
