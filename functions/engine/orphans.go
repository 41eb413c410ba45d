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
func (m *maintainer) jobKey(ctx context.Context, g *groups.Group, jobID string) (string, error) {
	var found string
	err := m.eachPendingImportKey(ctx, g, func(md *types.KeyMetadata, job string) error {
		if job == jobID && found == "" {
			found = aws.ToString(md.Arn)
		}
		return nil
	})
	return found, err
}

// eachPendingImportKey calls f for every EXTERNAL key in PendingImport
// that carries the keyferry:job tag.
func (m *maintainer) eachPendingImportKey(ctx context.Context, g *groups.Group, f func(md *types.KeyMetadata, job string) error) error {
	var marker *string
	for {
		var page *kms.ListKeysOutput
		err := pace(ctx, m.pacer, g, pacer.OpListKeys, func(ctx context.Context) (err error) {
			page, err = m.kms.ListKeys(ctx, &kms.ListKeysInput{Marker: marker})
			return err
		})
		if err != nil {
			return fmt.Errorf("kms ListKeys: %w", err)
		}
		for _, k := range page.Keys {
			var d *kms.DescribeKeyOutput
			err := pace(ctx, m.pacer, g, pacer.OpDescribeKey, func(ctx context.Context) (err error) {
				d, err = m.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyArn})
				return err
			})
			if err != nil {
				continue
			}
			md := d.KeyMetadata
			if md.Origin != types.OriginTypeExternal || md.KeyState != types.KeyStatePendingImport {
				continue
			}
			var tags *kms.ListResourceTagsOutput
			err = pace(ctx, m.pacer, g, pacer.OpListResourceTags, func(ctx context.Context) (err error) {
				tags, err = m.kms.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: md.Arn})
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
func (m *maintainer) SweepOrphanKeys(ctx context.Context) (int, error) {
	if m.groups == nil || len(m.groups.Groups) == 0 {
		return 0, nil
	}
	g := &m.groups.Groups[0] // one KMS client = one account-region scope
	cutoff := m.now().Add(-m.jobTimeout)
	n := 0
	err := m.eachPendingImportKey(ctx, g, func(md *types.KeyMetadata, jobID string) error {
		arn := aws.ToString(md.Arn)
		j, err := m.store.GetJob(ctx, jobID)
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
		err = pace(ctx, m.pacer, g, pacer.OpScheduleKeyDeletion, func(ctx context.Context) error {
			_, err := m.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.Arn, PendingWindowInDays: aws.Int32(7)})
			return err
		})
		if err != nil {
			return fmt.Errorf("kms ScheduleKeyDeletion %s: %w", arn, err)
		}
		m.log().InfoContext(ctx, "scheduled deletion of orphaned key", "key", arn, "job", jobID)
		n++
		return nil
	})
	return n, err
}
