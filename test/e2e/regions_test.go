package e2e

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/kmsregions"
	"github.com/keyferry/keyferry/test/kmsemu"
	"github.com/keyferry/keyferry/test/sandbox"
)

// The sample's multi-Region group: primary us-east-1, replica eu-west-1.
const (
	mrGroup   = "global-data"
	mrReplica = "eu-west-1"
)

// regionFault is the KMS emulator's per-Region fault hook of the suite's
// sandboxes (sandbox.Options.KMSRegionFault); nil injects nothing.
var regionFault atomic.Pointer[func(region, op string, req []byte) *kmsemu.FaultAction]

func regionFaultHook(region, op string, req []byte) *kmsemu.FaultAction {
	if f := regionFault.Load(); f != nil {
		return (*f)(region, op, req)
	}
	return nil
}

// regionKey is one Region's key of the multi-Region group.
type regionKey struct {
	region string
	c      *kms.Client
	arn    string
}

func mrKeys(t *testing.T, s *sandbox.Sandbox, primaryARN string) []regionKey {
	t.Helper()
	if !strings.Contains(primaryARN, ":key/mrk-") {
		t.Fatalf("%s's key %s is not multi-Region", mrGroup, primaryARN)
	}
	return []regionKey{{sandbox.Region, s.KMS, primaryARN}, {mrReplica, s.KMSIn(mrReplica), kmsregions.ReplicaARN(primaryARN, mrReplica)}}
}

func keyState(t *testing.T, k regionKey) kmstypes.KeyState {
	t.Helper()
	d, err := k.c.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: aws.String(k.arn)})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", k.arn, err)
	}
	return d.KeyMetadata.KeyState
}

// encryptEach makes a ciphertext through the group's alias in each Region.
func encryptEach(t *testing.T, keys []regionKey, alias string, msg []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, k := range keys {
		ct, err := k.c.Encrypt(testCtx(t), &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: msg})
		if err != nil {
			t.Fatalf("Encrypt with %s in %s: %v", alias, k.region, err)
		}
		out = append(out, ct.CiphertextBlob)
	}
	return out
}

// decryptAcross decrypts each Region's ciphertext in the other Region and
// reports the first failure (nil when every one decrypts to msg).
func decryptAcross(t *testing.T, keys []regionKey, cts [][]byte, msg []byte) error {
	t.Helper()
	for i, ct := range cts {
		other := keys[1-i]
		out, err := other.c.Decrypt(testCtx(t), &kms.DecryptInput{KeyId: aws.String(other.arn), CiphertextBlob: ct})
		if err != nil {
			return err
		}
		if !bytes.Equal(out.Plaintext, msg) {
			t.Fatalf("a ciphertext made in %s decrypts to other bytes in %s", keys[i].region, other.region)
		}
	}
	return nil
}

// replicasVerified checks the sandbox summary lists mrGroup's replica verified.
func replicasVerified(t *testing.T, s *sandbox.Sandbox, last *store.Job) {
	t.Helper()
	sum, err := s.Summarize(testCtx(t), map[string]*store.Job{mrGroup: last})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range sum.Groups {
		if g.Name != mrGroup {
			continue
		}
		if !g.Verified || len(g.Replicas) != 1 || g.Replicas[0].Region != mrReplica || !g.Replicas[0].Verified {
			t.Fatalf("%s summary: verified=%v replicas %+v", mrGroup, g.Verified, g.Replicas)
		}
		return
	}
	t.Fatalf("no %s in the summary", mrGroup)
}

// TestMultiRegionKillAndRestore: the kill switch (operator kill, the
// functions under the template's IAM) deletes the material of the
// multi-Region key in both Regions: both keys PendingImport, the
// ciphertexts made through the alias in either Region refused in both.
// Restore re-imports the HSM key into the primary and the replica (one
// re-import job, eu-west-1 in its RegionsDone), each Region's ciphertext
// decrypts in the other, and the summary lists the replica verified.
func TestMultiRegionKillAndRestore(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	ctx := testCtx(t)
	stamp := time.Now().UTC().Format("150405.000")
	g, _ := s.Groups.Group(mrGroup)
	gens := generations(t, s, mrGroup)
	keys := mrKeys(t, s, latestGeneration(t, s, mrGroup).KeyARN)
	msg := []byte("made before the kill " + stamp)
	cts := encryptEach(t, keys, g.Alias, msg)
	if err := decryptAcross(t, keys, cts, msg); err != nil {
		t.Fatalf("before the kill: %v", err)
	}

	resp, err := s.Operator(ctx, handlers.OperatorRequest{Action: handlers.OpKill, Group: mrGroup, RequestID: "e2e-mr-kill-" + stamp, Confirm: mrGroup})
	if err != nil || resp.Changed != len(gens) {
		t.Fatalf("kill: %+v, %v; want %d generations killed", resp, err, len(gens))
	}
	for _, gen := range gens {
		for _, k := range mrKeys(t, s, gen.KeyARN) {
			if st := keyState(t, k); st != kmstypes.KeyStatePendingImport {
				t.Errorf("%s key %s is %s after kill, want PendingImport", k.region, k.arn, st)
			}
		}
	}
	for i, ct := range cts {
		for _, k := range keys {
			if _, err := k.c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(k.arn), CiphertextBlob: ct}); !isInvalidState(err) {
				t.Errorf("a ciphertext made in %s decrypting in %s after kill: %v, want KMSInvalidStateException", keys[i].region, k.region, err)
			}
		}
	}

	rr, err := s.Operator(ctx, handlers.OperatorRequest{Action: handlers.OpRestore, Group: mrGroup, RequestID: "e2e-mr-restore-" + stamp})
	if err != nil || len(rr.Jobs) != len(gens) {
		t.Fatalf("restore: %+v, %v; want %d re-import jobs", rr, err, len(gens))
	}
	var last *store.Job
	for _, rj := range rr.Jobs {
		j := succeeded(t, s, rj.JobID)
		if j.Kind != store.KindReimport || len(j.RegionsDone) != 1 || j.RegionsDone[0] != mrReplica {
			t.Errorf("restore job %s: kind %s, regions done %v", j.ID, j.Kind, j.RegionsDone)
		}
		last = j
	}
	for _, k := range keys {
		if st := keyState(t, k); st != kmstypes.KeyStateEnabled {
			t.Errorf("%s key is %s after restore", k.region, st)
		}
	}
	if err := decryptAcross(t, keys, cts, msg); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	replicasVerified(t, s, last)
	aliasesResolveToUsableKeys(t, s)
}

// TestMultiRegionOneRegionFailingMidRotation: eu-west-1's KMS refuses the
// replica's import (KMSInvalidStateException): the rotation is FAILED
// naming eu-west-1, the alias stays on the current key in both Regions and
// that key keeps working in both, and the failed job's new primary and
// replica are scheduled for deletion. Then eu-west-1 answers
// KMSInternalException (retryable) for a while: the job waits in the
// replica's step; once eu-west-1 is back the sweeper resumes it and it
// SUCCEEDS having imported into the primary once (only the missing Region
// was redone).
func TestMultiRegionOneRegionFailingMidRotation(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	ctx := testCtx(t)
	stamp := time.Now().UTC().Format("150405.000")
	g, _ := s.Groups.Group(mrGroup)
	cur := latestGeneration(t, s, mrGroup)
	keys := mrKeys(t, s, cur.KeyARN)

	var mu sync.Mutex
	imports := map[string]int{} // ImportKeyMaterial requests by Region
	failWith := ""              // the error eu-west-1's ImportKeyMaterial answers
	f := func(region, op string, req []byte) *kmsemu.FaultAction {
		if op != "ImportKeyMaterial" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		imports[region]++
		if region == mrReplica && failWith != "" {
			return &kmsemu.FaultAction{ErrorType: failWith, Message: "injected: " + mrReplica + " refuses"}
		}
		return nil
	}
	set := func(e string) {
		mu.Lock()
		failWith = e
		for r := range imports {
			delete(imports, r)
		}
		mu.Unlock()
	}
	regionFault.Store(&f)
	defer regionFault.Store(nil)

	set("KMSInvalidStateException")
	j, err := s.WaitJob(ctx, schedule(t, s, mrGroup, "e2e-mr-fail-"+stamp).JobID, waitJob)
	if err != nil || j.State != store.StateFailed || !strings.Contains(j.Reason, "region "+mrReplica) {
		t.Fatalf("rotation with %s refusing: %+v %v, want FAILED naming the Region", mrReplica, j, err)
	}
	for _, k := range keys {
		d, err := k.c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(g.Alias)})
		if err != nil || aws.ToString(d.KeyMetadata.Arn) != k.arn || d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
			t.Fatalf("%s alias after the failed rotation: %+v %v, want the current key %s Enabled", k.region, d, err, k.arn)
		}
	}
	msg := []byte("made after the failed rotation " + stamp)
	if err := decryptAcross(t, keys, encryptEach(t, keys, g.Alias, msg), msg); err != nil {
		t.Fatalf("the current key after the failed rotation: %v", err)
	}
	// The cleanup runs right after the FAILED write: wait for it.
	for _, k := range mrKeys(t, s, j.PrimaryKeyARN) {
		for end := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			st := keyState(t, k)
			if st == kmstypes.KeyStatePendingDeletion {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the failed job's %s key %s is %s, want PendingDeletion", k.region, k.arn, st)
			}
		}
	}

	set("KMSInternalException")
	r := schedule(t, s, mrGroup, "e2e-mr-resume-"+stamp)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := imports[mrReplica]
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotation never reached %s's import", mrReplica)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if j := reachState(t, s, r.JobID, store.StateResult); j.Region != mrReplica {
		t.Fatalf("job waits in %s's step %q, want %s", j.State, j.Region, mrReplica)
	}
	mu.Lock()
	failWith = ""
	mu.Unlock()
	var done *store.Job
	for end := time.Now().Add(2 * jobTimeout); done == nil; {
		jj, err := s.Deps.Store.GetJob(ctx, r.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if jj.State.Terminal() {
			done = jj
			break
		}
		if time.Now().After(end) {
			t.Fatalf("job %s still %s after %s", jj.ID, jj.State, 2*jobTimeout)
		}
		sweep(t, s)
		time.Sleep(2 * time.Second)
	}
	if done.State != store.StateSucceeded {
		t.Fatalf("resumed job %s: %s %s", done.ID, done.State, done.Reason)
	}
	mu.Lock()
	primaryImports, replicaImports := imports[sandbox.Region], imports[mrReplica]
	mu.Unlock()
	if primaryImports != 1 || replicaImports < 2 {
		t.Errorf("ImportKeyMaterial: %d in %s, %d in %s; want 1 (not redone) and the retried replica's", primaryImports, sandbox.Region, replicaImports, mrReplica)
	}
	regionFault.Store(nil)
	replicasVerified(t, s, done)
	aliasesResolveToUsableKeys(t, s)
}
