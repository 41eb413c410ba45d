package engine_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/logsink"
)

// emfRecords parses the EMF lines in s that carry metric name.
func emfRecords(t *testing.T, s, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("EMF line %q: %v", sc.Text(), err)
		}
		if _, ok := rec[name]; ok {
			out = append(out, rec)
		}
	}
	return out
}

// TestWrapRefusalsMetric: every authenticated error message from an agent
// emits WrapRefusals with dimensions Group and Code (the job's group, or
// RefusalGroupUnknown when it names no job); a message that fails
// authentication emits nothing.
func TestWrapRefusalsMetric(t *testing.T) {
	g := uniq("refmetric")
	h := newHarness(t, symGroup(g, "alias-swap"))
	var buf logsink.Buffer
	h.eng.Metrics = &metrics.Emitter{W: &buf}
	j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t"))
	if err != nil {
		t.Fatal(err)
	}
	h.loop.Take()
	j = h.job(j.ID)
	seal := func(signer protocol.Signer, jobID, reqID string, code protocol.ErrorCode) *protocol.Envelope {
		b, err := protocol.Seal(h.ctx, signer, "agent-1", protocol.ActionError, protocol.Error{
			RequestID: reqID, JobID: jobID, AgentID: "agent-1", Code: code, Message: "refused",
		})
		if err != nil {
			t.Fatal(err)
		}
		env, _ := protocol.Decode(b)
		return env
	}
	rogue, err := protocol.GenerateECDSASigner()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		env       *protocol.Envelope
		wantErr   error
		wantGroup string // "" = no datapoint
		wantCode  protocol.ErrorCode
	}{
		{"forged signature", seal(rogue, j.ID, j.RequestID, protocol.CodePolicyRefused), engine.ErrRejected, "", ""},
		{"unknown job", seal(h.peer.Identity, "job-nope", "req-x", protocol.CodeBadRequest), engine.ErrRejected, engine.RefusalGroupUnknown, protocol.CodeBadRequest},
		{"the job's request", seal(h.peer.Identity, j.ID, j.RequestID, protocol.CodePolicyRefused), nil, g, protocol.CodePolicyRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(emfRecords(t, buf.String(), metrics.WrapRefusals))
			err := h.eng.HandleAgentError(h.ctx, "conn-1", tc.env)
			if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Fatalf("HandleAgentError: %v, want %v", err, tc.wantErr)
			}
			recs := emfRecords(t, buf.String(), metrics.WrapRefusals)
			if tc.wantGroup == "" {
				if len(recs) != before {
					t.Fatalf("unauthenticated message emitted WrapRefusals: %v", recs[before:])
				}
				return
			}
			if len(recs) != before+1 {
				t.Fatalf("%d new WrapRefusals records, want 1", len(recs)-before)
			}
			r := recs[len(recs)-1]
			if r["Group"] != tc.wantGroup || r["Code"] != string(tc.wantCode) || r[metrics.WrapRefusals] != 1.0 {
				t.Fatalf("record %v, want Group %s Code %s value 1", r, tc.wantGroup, tc.wantCode)
			}
		})
	}
}

// TestTransientAgentErrorAsksAgain: an hsm_error refusal (the agent's HSM
// failed twice in a row) or an expired one (delivered late, or judged by a
// skewed clock) does not fail the job: it is asked again at once, with a
// new request, and succeeds; after MaxAttempts such refusals it fails, with
// the reason and the attempt count.
func TestTransientAgentErrorAsksAgain(t *testing.T) {
	g := uniq("hsmerr")
	h := newHarness(t, symGroup(g, "alias-swap"))
	refuseWith := func(j *store.Job, code protocol.ErrorCode) error {
		b, err := protocol.Seal(h.ctx, h.peer.Identity, "agent-1", protocol.ActionError, protocol.Error{
			RequestID: j.RequestID, JobID: j.ID, AgentID: "agent-1", Code: code, Message: "refused: " + string(code),
		})
		if err != nil {
			t.Fatal(err)
		}
		env, _ := protocol.Decode(b)
		return h.eng.HandleAgentError(h.ctx, "conn-1", env)
	}
	refuse := func(j *store.Job) error { return refuseWith(j, protocol.CodeHSMError) }
	for _, code := range []protocol.ErrorCode{protocol.CodeHSMError, protocol.CodeExpired} {
		j, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t-"+string(code)))
		if err != nil {
			t.Fatal(err)
		}
		h.loop.Take()
		first := h.job(j.ID)
		if err := refuseWith(first, code); err != nil {
			t.Fatal(err)
		}
		again := h.job(j.ID)
		h.requireState(again, store.StateRequested)
		if again.RequestID == first.RequestID || again.Attempts != 1 {
			t.Fatalf("%s: not asked again: request %s (was %s), attempts %d", code, again.RequestID, first.RequestID, again.Attempts)
		}
		h.deliver()
		h.requireState(h.job(j.ID), store.StateSucceeded)
	}

	// Every attempt refused: FAILED with the reason.
	j2, _, err := h.eng.Start(h.ctx, engineTrigger(g, "t2"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		h.loop.Take()
		cur := h.job(j2.ID)
		if cur.State.Terminal() {
			if cur.State != store.StateFailed || !strings.Contains(cur.Reason, "hsm_error") || !strings.Contains(cur.Reason, "attempts") || i != 3 {
				t.Fatalf("after %d refusals: %s %q", i, cur.State, cur.Reason)
			}
			break
		}
		if err := refuse(cur); err != nil {
			t.Fatal(err)
		}
	}
}
