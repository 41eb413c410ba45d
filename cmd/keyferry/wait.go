package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// pollInterval is how often --wait reads the job.
const pollInterval = 250 * time.Millisecond

// waitJobs follows r's jobs until each is terminal, printing every state
// transition as it appears, then sets r.Verdict (and verifies a rotation).
func (a *app) waitJobs(ctx context.Context, r *actResult, g *groups.Group, timeout time.Duration) error {
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, res := range r.Response.Jobs {
		if res.JobID == "" {
			continue
		}
		a.progress("job %s (%s): following its states", res.JobID, r.Group)
		seen := 0
		var j *store.Job
		for {
			j, err = st.GetJob(ctx, res.JobID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				if ctx.Err() != nil {
					break
				}
				return err
			}
			if j != nil {
				for ; seen < len(j.History); seen++ {
					t := j.History[seen]
					from := string(t.From)
					if from == "" {
						from = "-"
					}
					note := ""
					if t.Note != "" {
						note = "  " + t.Note
					}
					a.progress("  %s  %-9s -> %-9s%s", t.At.Format("15:04:05.000"), from, t.To, note)
				}
				if j.State.Terminal() {
					break
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(pollInterval):
			}
			if ctx.Err() != nil {
				break
			}
		}
		if j == nil || !j.State.Terminal() {
			state := "unknown"
			if j != nil {
				state = string(j.State)
			}
			r.Verdict = fmt.Sprintf("timeout: job %s still %s after %s", res.JobID, state, timeout)
			if j != nil {
				r.Jobs = append(r.Jobs, viewJob(j))
			}
			return nil
		}
		r.Jobs = append(r.Jobs, viewJob(j))
		if j.State != store.StateSucceeded {
			r.Verdict = fmt.Sprintf("failed: job %s ended %s: %s", j.ID, j.State, j.Reason)
			return nil
		}
	}
	if r.Action != "rotate" {
		r.Verdict = "ok: every job SUCCEEDED"
		return nil
	}
	j := r.Jobs[len(r.Jobs)-1]
	v, err := a.verify(ctx, r.Group, g, j.Generation)
	if err != nil {
		return err
	}
	r.Verified = v
	if v.Verified {
		r.Verdict = fmt.Sprintf("ok: generation %d verified (KMS key %s %s, material %s)", v.Generation, v.KeyARN, v.KMSKeyState, orDash(v.KeyMaterialID))
	} else {
		r.Verdict = fmt.Sprintf("failed: generation %d not verified: %v", v.Generation, v.Problems)
	}
	if a.asJSON {
		a.progress("%s", r.Verdict) // the table prints it with the result
	}
	return nil
}

// verification is the check of a new generation against KMS.
type verification struct {
	Generation    int64    `json:"generation"`
	KeyARN        string   `json:"key_arn"`
	KeyMaterialID string   `json:"key_material_id,omitempty"`
	StoreState    string   `json:"store_state"`
	Alias         string   `json:"alias,omitempty"`
	AliasTarget   string   `json:"alias_target,omitempty"`
	KMSKeyState   string   `json:"kms_key_state"`
	KMSMaterialID string   `json:"kms_current_key_material_id,omitempty"`
	Verified      bool     `json:"verified"`
	Problems      []string `json:"problems,omitempty"`
}

// verify checks that generation gen of group is CURRENT in the store, its
// KMS key is Enabled, the alias (when known) points at it, and KMS's current
// key material is the generation's.
func (a *app) verify(ctx context.Context, group string, g *groups.Group, gen int64) (*verification, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	kc, err := a.kmsClient(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := st.Generation(ctx, group, gen)
	if err != nil {
		return nil, err
	}
	v := &verification{Generation: gen, KeyARN: rec.KeyARN, KeyMaterialID: rec.KeyMaterialID, StoreState: string(rec.State)}
	if rec.State != store.GenCurrent {
		v.Problems = append(v.Problems, "store state is "+string(rec.State)+", not CURRENT")
	}
	md, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(rec.KeyARN)})
	if err != nil {
		return nil, err
	}
	v.KMSKeyState = string(md.KeyMetadata.KeyState)
	v.KMSMaterialID = aws.ToString(md.KeyMetadata.CurrentKeyMaterialId)
	if v.KMSKeyState != "Enabled" {
		v.Problems = append(v.Problems, "KMS key state is "+v.KMSKeyState)
	}
	if rec.KeyMaterialID != "" && v.KMSMaterialID != "" && v.KMSMaterialID != rec.KeyMaterialID {
		v.Problems = append(v.Problems, "KMS current key material is "+v.KMSMaterialID)
	}
	if g != nil && g.Alias != "" {
		v.Alias = g.Alias
		am, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(g.Alias)})
		if err != nil {
			return nil, err
		}
		v.AliasTarget = aws.ToString(am.KeyMetadata.Arn)
		if v.AliasTarget != rec.KeyARN {
			v.Problems = append(v.Problems, "alias "+g.Alias+" points at "+v.AliasTarget)
		}
	}
	v.Verified = len(v.Problems) == 0
	return v, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
