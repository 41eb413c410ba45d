package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/engine"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/sandbox"
)

// inPlaceRegionsGroups is a groups file with one in-place multi-Region
// group (the sample's multi-Region group is alias-swap).
const inPlaceRegionsGroups = `version: 1
control_plane:
  signing_key_alias: alias/keyferry-control-plane
hsm_pools:
  - name: sandbox
    agents:
      - id: sandbox-agent-1
defaults:
  account: "111122223333"
  region: us-east-1
  hsm_pool: sandbox
  policy_file: policies/default.json
groups:
  - name: global-inplace
    description: Multi-Region key rotated in place (primary us-east-1, replica eu-west-1).
    key_spec: SYMMETRIC_DEFAULT
    mode: in-place
    rotation_cap: 100
    replicas: [eu-west-1]
    schedule: rate(1 hour)
    alias: alias/global-inplace
`

// TestInPlaceRotationAcrossRegions: on a sandbox of its own (the
// template synthesized for an in-place group with a replica, the functions
// under the RIE and IAM), the first rotation makes the multi-Region key;
// the second rotates it in place: same key ARN, a new KeyMaterialId that
// is the current material in us-east-1 and eu-west-1 (NEW_KEY_MATERIAL on
// the primary, EXISTING_KEY_MATERIAL into the replica, RotateKeyOnDemand on
// the primary), eu-west-1 in the job's RegionsDone; a ciphertext made
// before the rotation in eu-west-1 decrypts in us-east-1 and one made
// after in us-east-1 decrypts in eu-west-1; the summary lists the replica
// verified. The suite's shared sandbox is closed first and started again
// by the next test that needs it.
func TestInPlaceRotationAcrossRegions(t *testing.T) {
	dir := t.TempDir()
	pol, err := os.ReadFile(filepath.Join("..", "sandbox", "policies", "default.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "policies"), 0o700)
	os.WriteFile(filepath.Join(dir, "policies", "default.json"), pol, 0o600)
	groupsFile := filepath.Join(dir, "key-groups.yaml")
	os.WriteFile(groupsFile, []byte(inPlaceRegionsGroups), 0o600)

	sbMu.Lock()
	closeSandbox()
	sbMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{Functions: sandbox.FunctionsRIE, AgentBinary: agentBinary,
		JobTimeout: jobTimeout, RequestTTL: requestTTL, GroupsFile: groupsFile})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	defer func() {
		s.Close()
		os.Unsetenv("AWS_ENDPOINT_URL_KMS")
	}()
	dumpAgentLog(t, s)
	const name = "global-inplace"
	stamp := time.Now().UTC().Format("150405.000")
	j1 := succeeded(t, s, schedule(t, s, name, "e2e-mr-inplace-1-"+stamp).JobID)
	keys := mrKeys(t, s, j1.KeyARN)
	msg := []byte("made before the in-place rotation " + stamp)
	beforeCts := encryptEach(t, keys, "alias/"+name, msg)

	j2 := succeeded(t, s, schedule(t, s, name, "e2e-mr-inplace-2-"+stamp).JobID)
	if j2.KeyARN != j1.KeyARN || j2.Mode != engine.ModeInPlace || j2.NewKey || len(j2.RegionsDone) != 1 || j2.RegionsDone[0] != mrReplica {
		t.Fatalf("in-place job: key %s (first %s), mode %s, new key %v, regions done %v", j2.KeyARN, j1.KeyARN, j2.Mode, j2.NewKey, j2.RegionsDone)
	}
	if j2.KeyMaterialID == "" || j2.KeyMaterialID == j1.KeyMaterialID {
		t.Fatalf("material %q after the in-place rotation (first %q)", j2.KeyMaterialID, j1.KeyMaterialID)
	}
	for _, k := range keys {
		d, err := k.c.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: aws.String(k.arn)})
		if err != nil || aws.ToString(d.KeyMetadata.CurrentKeyMaterialId) != j2.KeyMaterialID || d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled {
			t.Fatalf("%s key after the in-place rotation: %+v %v, want current material %s", k.region, d, err, j2.KeyMaterialID)
		}
	}
	if err := decryptAcross(t, keys, beforeCts, msg); err != nil {
		t.Fatalf("ciphertexts from before the rotation: %v", err)
	}
	after := []byte("made after the in-place rotation " + stamp)
	if err := decryptAcross(t, keys, encryptEach(t, keys, "alias/"+name, after), after); err != nil {
		t.Fatalf("ciphertexts from after the rotation: %v", err)
	}
	sum, err := s.Summarize(testCtx(t), map[string]*store.Job{name: j2})
	if err != nil || len(sum.Groups) != 1 || !sum.Groups[0].Verified || len(sum.Groups[0].Replicas) != 1 || !sum.Groups[0].Replicas[0].Verified {
		t.Fatalf("summary: %+v %v", sum.Groups, err)
	}
}
