package engine_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// dropFirstCreateKey makes the emulator apply the first CreateKey tagged
// with jobTag and drop its response.
func dropFirstCreateKey(t *testing.T, jobTag string) {
	var done atomic.Bool
	f := kmsemu.FaultFunc(func(op string, req []byte) *kmsemu.FaultAction {
		if op == "CreateKey" && bytes.Contains(req, []byte(jobTag)) && done.CompareAndSwap(false, true) {
			return &kmsemu.FaultAction{DropResponse: true}
		}
		return nil
	})
	faultHook.Store(&f)
	t.Cleanup(func() { faultHook.Store(nil) })
}

func (h *harness) keysTaggedWith(jobID string) map[string]kmstypes.KeyState {
	h.t.Helper()
	out := map[string]kmstypes.KeyState{}
	keys, err := h.kms.ListKeys(h.ctx, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, k := range keys.Keys {
		tags, err := h.kms.ListResourceTags(h.ctx, &kms.ListResourceTagsInput{KeyId: k.KeyArn})
		if err != nil {
			continue
		}
		for _, tg := range tags.Tags {
			if aws.ToString(tg.TagKey) == engine.JobTagKey && aws.ToString(tg.TagValue) == jobID {
				d, _ := h.kms.DescribeKey(h.ctx, &kms.DescribeKeyInput{KeyId: k.KeyArn})
				out[aws.ToString(k.KeyArn)] = d.KeyMetadata.KeyState
			}
		}
	}
	return out
}

// TestCrashAfterCreateKeyReusesTheKey: CreateKey happens but its response
// is lost and nothing retries (a crash between the call and the job
// write); the resumed job finds the key by its keyferry:job tag and
// reuses it: one key, SUCCEEDED.
func TestCrashAfterCreateKeyReusesTheKey(t *testing.T) {
	g := uniq("lost")
	h := newHarness(t, symGroup(g, "alias-swap"))
	jobID := store.JobIDForTrigger(g, "t")
	dropFirstCreateKey(t, jobID)
	h.eng.KMS = kms.New(kms.Options{Region: region, BaseEndpoint: aws.String(emu.URL()), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
		})})
	_, _, err := h.eng.Start(h.ctx, engine.TriggerRequest{Group: g, Trigger: "schedule", TriggerID: "t"})
	if err == nil {
		t.Fatal("the lost CreateKey response was not noticed")
	}
	h.requireState(h.job(jobID), store.StatePending)
	// The job is live and has no key yet: the sweeper leaves its key alone
	// however old it is, since the resumed job will adopt it.
	emu.Advance(time.Hour)
	if n, err := h.eng.SweepOrphanKeys(h.ctx); err != nil || n != 0 {
		t.Fatalf("the key of a live job was swept as an orphan: %d %v", n, err)
	}
	h.eng.KMS = h.kms
	if _, err := h.eng.Resume(h.ctx, jobID); err != nil {
		t.Fatal(err)
	}
	h.deliver()
	j := h.job(jobID)
	h.requireState(j, store.StateSucceeded)
	keys := h.keysTaggedWith(jobID)
	if len(keys) != 1 || keys[j.KeyARN] != kmstypes.KeyStateEnabled {
		t.Fatalf("keys of the job: %v, want only %s Enabled", keys, j.KeyARN)
	}
}

// TestSweeperCleansOrphanedPendingImportKeys: the SDK retries a CreateKey
// whose response was lost, so KMS holds two keys for one job; the sweeper
// schedules deletion of the one the job does not own as soon as the job
// holds the other (whatever the clocks say), and never touches the job's
// key.
func TestSweeperCleansOrphanedPendingImportKeys(t *testing.T) {
	g := uniq("orphan")
	h := newHarness(t, symGroup(g, "alias-swap"))
	jobID := store.JobIDForTrigger(g, "t")
	dropFirstCreateKey(t, jobID)
	j := h.rotate(g, "t")
	h.requireState(j, store.StateSucceeded)
	keys := h.keysTaggedWith(jobID)
	if len(keys) != 2 {
		t.Fatalf("keys of the job: %v, want the orphan and the job's key", keys)
	}
	if _, _, err := h.eng.Sweep(h.ctx); err != nil && !errors.Is(err, engine.ErrNoAgent) {
		t.Fatal(err)
	}
	for arn, st := range h.keysTaggedWith(jobID) {
		want := kmstypes.KeyStatePendingDeletion
		if arn == j.KeyARN {
			want = kmstypes.KeyStateEnabled
		}
		if st != want {
			t.Fatalf("key %s is %s, want %s", arn, st, want)
		}
	}
}
