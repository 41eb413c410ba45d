package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/keyferry/keyferry/functions/pacer"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// jobKey finds the key a job created (tag keyferry:job = job id), for a
// job resumed after a crash (or a lost response) between CreateKey and the
// job write: the key is reused instead of orphaned.
func (e *Engine) jobKey(ctx context.Context, g *groups.Group, jobID string) (string, error) {
	var found string
	err := e.eachPendingImportKey(ctx, g, func(md *types.KeyMetadata, job string) error {
		if job == jobID && found == "" {
			found = aws.ToString(md.Arn)
		}
		return nil
	})
	return found, err
}

// eachPendingImportKey calls f for every EXTERNAL key in PendingImport
// that carries the keyferry:job tag.
func (e *Engine) eachPendingImportKey(ctx context.Context, g *groups.Group, f func(md *types.KeyMetadata, job string) error) error {
	var marker *string
	for {
		var page *kms.ListKeysOutput
		err := e.call(ctx, g, pacer.OpListKeys, func(ctx context.Context) (err error) {
			page, err = e.maintenanceKMS().ListKeys(ctx, &kms.ListKeysInput{Marker: marker})
			return err
		})
		if err != nil {
			return fmt.Errorf("kms ListKeys: %w", err)
		}
		for _, k := range page.Keys {
			md, err := e.describe(ctx, g, aws.ToString(k.KeyArn))
			if err != nil || md.Origin != types.OriginTypeExternal || md.KeyState != types.KeyStatePendingImport {
				continue
			}
			var tags *kms.ListResourceTagsOutput
			err = e.call(ctx, g, pacer.OpListResourceTags, func(ctx context.Context) (err error) {
				tags, err = e.maintenanceKMS().ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: md.Arn})
				return err
			})
			if err != nil {
				continue
			}
			for _, t := range tags.Tags {
				if aws.ToString(t.TagKey) == JobTagKey {
					if err := f(md, aws.ToString(t.TagValue)); err != nil {
						return err
					}
				}
			}
		}
		if !page.Truncated {
			return nil
		}
		marker = page.NextMarker
	}
}

// SweepOrphanKeys schedules deletion of PendingImport keys a job created
// but does not own: a lost CreateKey response retried (by the SDK or a
// resumed job), a job that failed before it learnt its key's ARN, a job
// record that vanished. The creating job (tag keyferry:job) decides:
//   - the job's own key (its KeyARN): never touched here (live, killed,
//     or handled by the failed-job cleanup);
//   - the job is live and has no key yet: it may still adopt this one
//     (jobKey), so it is left alone;
//   - the job ended, or holds another key: orphan, at once (no clock
//     comparison: KMS's CreationDate and the control plane's clock need
//     not agree);
//   - no job record: orphan once older than the job timeout (a job
//     record is written before its CreateKey, so this is a vanished job).
func (e *Engine) SweepOrphanKeys(ctx context.Context) (int, error) {
	if e.Groups == nil || len(e.Groups.Groups) == 0 {
		return 0, nil
	}
	g := &e.Groups.Groups[0] // one KMS client = one account-region scope
	cutoff := e.now().Add(-e.jobTimeout())
	n := 0
	err := e.eachPendingImportKey(ctx, g, func(md *types.KeyMetadata, jobID string) error {
		arn := aws.ToString(md.Arn)
		j, err := e.Store.GetJob(ctx, jobID)
		switch {
		case err == nil && j.KeyARN == arn:
			return nil
		case err == nil && j.KeyARN == "" && !j.State.Terminal():
			return nil
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			if md.CreationDate != nil && md.CreationDate.After(cutoff) {
				return nil
			}
		default:
			return err
		}
		err = e.call(ctx, g, pacer.OpScheduleKeyDeletion, func(ctx context.Context) error {
			_, err := e.maintenanceKMS().ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.Arn, PendingWindowInDays: aws.Int32(7)})
			return err
		})
		if err != nil {
			return fmt.Errorf("kms ScheduleKeyDeletion %s: %w", arn, err)
		}
		e.log().InfoContext(ctx, "scheduled deletion of orphaned key", "key", arn, "job", jobID)
		n++
		return nil
	})
	return n, err
}
