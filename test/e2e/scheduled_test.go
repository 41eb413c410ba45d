package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/test/sandbox"
)

// scheduleRound delivers one Scheduler invocation per group (in parallel,
// as the schedules fire independently) and waits for every job.
func scheduleRound(t *testing.T, s *sandbox.Sandbox, id string) map[string]*store.Job {
	t.Helper()
	type res struct {
		group string
		job   string
	}
	ch := make(chan res, len(s.Groups.Groups))
	for _, g := range s.Groups.Groups {
		go func() {
			r := schedule(t, s, g.Name, id)
			ch <- res{g.Name, r.JobID}
		}()
	}
	ids := map[string]string{}
	for range s.Groups.Groups {
		r := <-ch
		ids[r.group] = r.job
	}
	out := map[string]*store.Job{}
	for g, id := range ids {
		out[g] = succeeded(t, s, id)
	}
	return out
}

// TestScheduledRotationEveryGroup: Scheduler payloads rotate every sample
// group; each job SUCCEEDED (the engine verified KMS against the HSM twin),
// the alias names the newest generation; a second round rotates in place
// (same ARN, new CurrentKeyMaterialId) or swaps the alias (new key), and
// what was encrypted, MACed or signed before still decrypts or verifies.
func TestScheduledRotationEveryGroup(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ctx := testCtx(t)
	stamp := time.Now().UTC().Format("20060102T150405.000")

	first := scheduleRound(t, s, "e2e-sched-1-"+stamp)
	sbRotated = true
	sum, err := s.Summarize(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != len(s.Groups.Groups) || len(sum.Groups) < 7 {
		t.Fatalf("summary has %d groups, want the %d sample groups", len(sum.Groups), len(s.Groups.Groups))
	}
	for _, g := range sum.Groups {
		if !g.Verified {
			t.Errorf("group %s not verified after the first round: %+v", g.Name, g)
		}
	}

	type before struct {
		keyARN, materialID string
		gens               int
		proof              proof
	}
	was := map[string]before{}
	for i := range s.Groups.Groups {
		g := &s.Groups.Groups[i]
		md := describe(t, s, g.Alias)
		was[g.Name] = before{
			keyARN: aws.ToString(md.Arn), materialID: aws.ToString(md.CurrentKeyMaterialId),
			gens: len(generations(t, s, g.Name)), proof: makeProof(t, s, g),
		}
	}

	// At-least-once delivery: the same execution id again is the same job.
	dup := schedule(t, s, "archive-data", "e2e-sched-1-"+stamp)
	if dup.Outcome != store.Duplicate || dup.JobID != first["archive-data"].ID {
		t.Errorf("redelivered schedule: outcome %s job %s, want duplicate of %s", dup.Outcome, dup.JobID, first["archive-data"].ID)
	}

	second := scheduleRound(t, s, "e2e-sched-2-"+stamp)
	for i := range s.Groups.Groups {
		g := &s.Groups.Groups[i]
		t.Run(g.Name, func(t *testing.T) {
			w, j := was[g.Name], second[g.Name]
			md := describe(t, s, g.Alias)
			latest := latestGeneration(t, s, g.Name)
			if got := len(generations(t, s, g.Name)); got != w.gens+1 {
				t.Errorf("generations: %d, want %d", got, w.gens+1)
			}
			if latest.JobID != j.ID || aws.ToString(md.Arn) != latest.KeyARN {
				t.Errorf("alias %s -> %s; newest generation %d is %s (job %s, want %s)", g.Alias, aws.ToString(md.Arn), latest.Generation, latest.KeyARN, latest.JobID, j.ID)
			}
			if md.KeyState != "Enabled" {
				t.Errorf("alias key state %s", md.KeyState)
			}
			switch g.Mode {
			case groups.ModeInPlace:
				if aws.ToString(md.Arn) != w.keyARN {
					t.Errorf("in-place rotation changed the key: %s -> %s", w.keyARN, aws.ToString(md.Arn))
				}
				cur := aws.ToString(md.CurrentKeyMaterialId)
				if cur == w.materialID || cur == "" || cur != latest.KeyMaterialID {
					t.Errorf("CurrentKeyMaterialId %q (before %q, generation records %q)", cur, w.materialID, latest.KeyMaterialID)
				}
			default:
				if aws.ToString(md.Arn) == w.keyARN {
					t.Errorf("alias-swap rotation left %s on %s", g.Alias, w.keyARN)
				}
				if old := describe(t, s, w.keyARN); old.KeyState != "Enabled" {
					t.Errorf("previous key %s is %s, want Enabled (it decrypts/verifies old data)", w.keyARN, old.KeyState)
				}
			}
			w.proof.mustCheck(t, s)
			// And the new generation serves new requests.
			makeProof(t, s, g).mustCheck(t, s)
		})
	}
	if t.Failed() {
		for g, j := range second {
			t.Log(fmt.Sprintf("%s: %s %s", g, j.ID, j.State))
		}
	}
}
