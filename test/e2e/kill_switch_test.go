package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// TestKillSwitchThenRestore: the kill switch makes every key of the group
// unusable at once (KMSInvalidStateException, PendingImport) and blocks
// rotations; restore re-imports every generation from the HSM and what was
// encrypted or signed before works again.
func TestKillSwitchThenRestore(t *testing.T) {
	s, _ := useSandbox(t, kindMain)
	dumpAgentLog(t, s)
	ensureRotated(t, s)
	ctx := testCtx(t)
	stamp := time.Now().UTC().Format("150405.000")

	for _, group := range []string{"archive-data", "token-signing"} {
		t.Run(group, func(t *testing.T) {
			g, _ := s.Groups.Group(group)
			// Two generations: two KMS keys (both groups are alias-swap).
			old := makeProof(t, s, g)
			succeeded(t, s, schedule(t, s, group, "e2e-kill-pre-"+stamp).JobID)
			cur := makeProof(t, s, g)
			proofs := []proof{old, cur}
			gens := generations(t, s, group)
			if len(gens) < 2 || old.keyARN == cur.keyARN {
				t.Fatalf("want two keys before the kill, have %d generations", len(gens))
			}

			// Refused without the confirmation: nothing changes.
			if _, err := s.Operator(ctx, handlers.OperatorRequest{Action: handlers.OpKill, Group: group, RequestID: "e2e-kill-" + stamp}); !errors.Is(err, handlers.ErrBadRequest) {
				t.Fatalf("kill without confirm: %v, want ErrBadRequest", err)
			}
			if st := describe(t, s, cur.keyARN).KeyState; st != kmstypes.KeyStateEnabled {
				t.Fatalf("unconfirmed kill changed the key: %s", st)
			}

			resp, err := s.Operator(ctx, handlers.OperatorRequest{Action: handlers.OpKill, Group: group, RequestID: "e2e-kill-" + stamp, Confirm: group})
			if err != nil || resp.Changed != len(gens) {
				t.Fatalf("kill: %+v, %v; want %d materials deleted", resp, err, len(gens))
			}
			for _, gen := range generations(t, s, group) {
				if gen.State != store.GenKilled {
					t.Errorf("generation %d is %s after kill", gen.Generation, gen.State)
				}
				if st := describe(t, s, gen.KeyARN).KeyState; st != kmstypes.KeyStatePendingImport {
					t.Errorf("key %s is %s after kill, want PendingImport", gen.KeyARN, st)
				}
			}
			for _, p := range proofs {
				if err := p.check(t, s); !isInvalidState(err) {
					t.Errorf("proof under %s after kill: %v, want KMSInvalidStateException", p.keyARN, err)
				}
			}
			for _, key := range []string{g.Alias, old.keyARN} {
				var err error
				if g.Info().Family == keyspec.FamilySymmetric {
					_, err = s.KMS.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x")})
				} else {
					_, err = s.KMS.Sign(ctx, &kms.SignInput{KeyId: aws.String(key), Message: []byte("x"), MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: old.signAlg})
				}
				if !isInvalidState(err) {
					t.Errorf("using %s after kill: %v, want KMSInvalidStateException", key, err)
				}
			}
			// A rotation while killed fails with a reason and moves nothing.
			r := schedule(t, s, group, "e2e-kill-during-"+stamp)
			j, err := s.WaitJob(ctx, r.JobID, waitJob)
			if err != nil || j.State != store.StateFailed || !strings.Contains(j.Reason, "kill") {
				t.Errorf("rotation of a killed group: %+v %v, want FAILED naming the kill switch", j, err)
			}

			rr, err := s.Operator(ctx, handlers.OperatorRequest{Action: handlers.OpRestore, Group: group, RequestID: "e2e-restore-" + stamp})
			if err != nil || len(rr.Jobs) != len(gens) {
				t.Fatalf("restore: %+v, %v; want %d re-import jobs", rr, err, len(gens))
			}
			for _, rj := range rr.Jobs {
				if j := succeeded(t, s, rj.JobID); j.Kind != store.KindReimport {
					t.Errorf("restore job %s kind %s", j.ID, j.Kind)
				}
			}
			for _, p := range proofs {
				p.mustCheck(t, s)
				if st := describe(t, s, p.keyARN).KeyState; st != kmstypes.KeyStateEnabled {
					t.Errorf("key %s is %s after restore", p.keyARN, st)
				}
			}
			if arn := aws.ToString(describe(t, s, g.Alias).Arn); arn != cur.keyARN {
				t.Errorf("alias %s -> %s after restore, want %s", g.Alias, arn, cur.keyARN)
			}
			// And the group rotates again.
			succeeded(t, s, schedule(t, s, group, "e2e-kill-post-"+stamp).JobID)
		})
	}
	aliasesResolveToUsableKeys(t, s)
}
