package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
)

// TestControlPlaneRefusesResultNotMatchingItsRequest: the control plane
// binds a wrap_result to its request with protocol.WrapResult.Matches, the
// check the protocol defines: a correctly signed result whose wrapped blob
// does not fit the wrapping key, or that lacks the challenge MAC its
// request asked for, is rejected and leaves the job as it was;
// the genuine result then completes it.
func TestControlPlaneRefusesResultNotMatchingItsRequest(t *testing.T) {
	cases := []struct {
		name, spec string
		mutate     func(*protocol.WrapResult)
	}{
		{"blob one byte short", "SYMMETRIC_DEFAULT", func(r *protocol.WrapResult) { r.WrappedMaterial = r.WrappedMaterial[:len(r.WrappedMaterial)-1] }},
		{"blob doubled", "SYMMETRIC_DEFAULT", func(r *protocol.WrapResult) {
			r.WrappedMaterial = append(append([]byte(nil), r.WrappedMaterial...), r.WrappedMaterial...)
		}},
		{"challenge MAC missing", "HMAC_256", func(r *protocol.WrapResult) { r.ChallengeMAC = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := uniq("match")
			h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: %s\n    mode: alias-swap\n    alias: alias/%s\n", g, tc.spec, g))
			j, env, res := h.answerFirst(g)
			tc.mutate(&res)
			b, err := protocol.Seal(h.ctx, h.peer.Identity, "agent-1", protocol.ActionWrapResult, res)
			if err != nil {
				t.Fatal(err)
			}
			bad, err := protocol.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			before := h.job(j.ID)
			if _, err := h.eng.HandleWrapResult(h.ctx, "conn-1", bad); !errors.Is(err, engine.ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
			if after := h.job(j.ID); after.State != store.StateRequested || after.Version != before.Version {
				t.Fatalf("job changed: %s v%d -> %s v%d", before.State, before.Version, after.State, after.Version)
			}
			if !strings.Contains(h.logs.String(), "wrap_result rejected") {
				t.Fatal("rejection not logged")
			}
			if _, err := h.eng.HandleWrapResult(h.ctx, "conn-1", env); err != nil {
				t.Fatalf("genuine result: %v", err)
			}
			h.requireState(h.job(j.ID), store.StateSucceeded)
		})
	}
}
