//go:build keyferrytest

package e2e

import (
	"encoding/json"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
)

// TestKeepaliveReimportsBeforeExpiry (-tags keyferrytest: it uses the
// engine's test seam, Engine.AfterStep): payments-data's material expires
// after 30 days (re-import margin 7 days). With the KMS and control-plane
// clocks moved 23 days and 1 hour ahead, the keepalive function starts a
// re-import of every generation (in place: two materials on one key), each
// SUCCEEDS, the key never leaves Enabled, and after the clocks pass the
// original ValidTo the key is still Enabled and old ciphertexts decrypt.
//
// The agent's clock cannot move (its clock skew is capped at 10 min), so
// the control plane's clock reads real time while it signs a wrap_request
// (from PARAMS until the wrap_result arrives) and the shifted time
// otherwise; the agent is frozen during the keepalive run so both jobs'
// requests are signed before either import.
func TestKeepaliveReimportsBeforeExpiry(t *testing.T) {
	s, clk := useSandbox(t, kindClock)
	dumpAgentLog(t, s)
	ctx := testCtx(t)
	eng := s.Deps.Engine
	eng.AfterStep = func(j *store.Job) error {
		switch j.State {
		case store.StateParams:
			clk.setSigning(true)
		case store.StateResult:
			clk.setSigning(false)
		}
		return nil
	}
	const group = "payments-data"
	g, _ := s.Groups.Group(group)
	succeeded(t, s, schedule(t, s, group, "e2e-keepalive-1").JobID)
	p1 := makeProof(t, s, g)
	succeeded(t, s, schedule(t, s, group, "e2e-keepalive-2").JobID)
	p2 := makeProof(t, s, g)
	gens := generations(t, s, group)
	if len(gens) != 2 || p1.keyARN != p2.keyARN {
		t.Fatalf("want two in-place generations on one key, have %d", len(gens))
	}
	keyARN := p1.keyARN
	originalValidTo := map[int64]time.Time{}
	for _, gen := range gens {
		if left := time.Until(gen.ExpiresAt); left < 29*24*time.Hour || left > 31*24*time.Hour {
			t.Fatalf("generation %d expires in %s, want ~30 days", gen.Generation, left)
		}
		originalValidTo[gen.Generation] = gen.ExpiresAt
	}

	// Watch the key's state for the whole test.
	var mu sync.Mutex
	states := map[kmstypes.KeyState]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			out, err := s.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
			if err == nil {
				mu.Lock()
				states[out.KeyMetadata.KeyState]++
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	// Nothing to do yet.
	if out, err := s.Deps.Keepalive(ctx, json.RawMessage(`{"task":"keepalive"}`)); err != nil || out.(handlers.KeepaliveResult).Reimports != 0 {
		t.Fatalf("keepalive 30 days before expiry: %+v %v, want no re-import", out, err)
	}

	shift := 23*24*time.Hour + time.Hour
	s.Emulator.Advance(shift)
	clk.Set(shift)
	pid := s.AgentPID()
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	out, err := s.Deps.Keepalive(ctx, json.RawMessage(`{"task":"keepalive"}`))
	// The worker sends both wrap_requests to the frozen agent.
	var jobs []*store.Job
	var jerr error
	for wait := time.Now().Add(20 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		if jobs, jerr = s.Deps.Store.JobsInState(ctx, store.StateRequested, time.Now().Add(365*24*time.Hour)); jerr != nil || len(jobs) >= 2 {
			break
		}
	}
	syscall.Kill(-pid, syscall.SIGCONT)
	if err != nil || out.(handlers.KeepaliveResult).Reimports != 2 {
		t.Fatalf("keepalive 6d23h before expiry: %+v %v, want 2 re-imports", out, err)
	}
	if jerr != nil || len(jobs) != 2 {
		t.Fatalf("re-import jobs awaiting the agent: %d %v, want 2", len(jobs), jerr)
	}
	for _, rj := range jobs {
		j := succeeded(t, s, rj.ID)
		if j.Kind != store.KindReimport || j.Trigger != "keepalive" || j.Group != group || j.KeyARN != keyARN {
			t.Errorf("job %s: kind %s trigger %s group %s key %s", j.ID, j.Kind, j.Trigger, j.Group, j.KeyARN)
		}
	}
	for _, gen := range generations(t, s, group) {
		if !gen.ExpiresAt.After(originalValidTo[gen.Generation].Add(20 * 24 * time.Hour)) {
			t.Errorf("generation %d expires %s, want re-armed ~30 days past the shifted now (was %s)", gen.Generation, gen.ExpiresAt, originalValidTo[gen.Generation])
		}
	}
	// Re-armed: the next keepalive has nothing to do.
	if out, err := s.Deps.Keepalive(ctx, json.RawMessage(`{"task":"keepalive"}`)); err != nil || out.(handlers.KeepaliveResult).Reimports != 0 {
		t.Errorf("keepalive after re-import: %+v %v, want none", out, err)
	}

	// Past the original ValidTo.
	s.Emulator.Advance(7 * 24 * time.Hour)
	clk.Set(shift + 7*24*time.Hour)
	if md := describe(t, s, g.Alias); md.KeyState != kmstypes.KeyStateEnabled || aws.ToString(md.Arn) != keyARN {
		t.Fatalf("after the original ValidTo: %s is %s (%s), want Enabled", g.Alias, md.KeyState, aws.ToString(md.Arn))
	}
	p1.mustCheck(t, s)
	p2.mustCheck(t, s)
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 1 || states[kmstypes.KeyStateEnabled] == 0 {
		t.Errorf("key states seen: %v, want only Enabled (never PendingImport)", states)
	}
}
