package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Outcome says what StartJob did with a trigger.
type Outcome string

// Outcomes of StartJob.
const (
	Started   Outcome = "started"   // a new job holds the lock
	Duplicate Outcome = "duplicate" // the trigger was seen before: its job is returned
	Skipped   Outcome = "skipped"   // recorded as a SKIPPED job (lock held or cooldown)
)

// TriggerTTL is how long trigger idempotency records are kept.
const TriggerTTL = 7 * 24 * time.Hour

// LockKey is the groups-table item a job locks: the group for rotations
// (one rotation per group at a time), group#generation for re-imports.
func (j *Job) LockKey() string {
	if j.Kind == KindReimport {
		return fmt.Sprintf("%s#%d", j.Group, j.ReimportGeneration)
	}
	return j.Group
}

// StartJob records trigger j.TriggerID and starts j (ID derived from the
// trigger, State PENDING) if the lock for j is free and, when cooldown > 0,
// the group's last alarm-triggered rotation is older than cooldown. All of
// it is one DynamoDB transaction. A trigger seen before returns its job with
// Duplicate; a trigger that cannot run is recorded as a SKIPPED job with the
// reason and returned with Skipped.
func (s *Store) StartJob(ctx context.Context, j *Job, cooldown time.Duration) (*Job, Outcome, error) {
	if j.TriggerID == "" || j.Group == "" {
		return nil, "", errors.New("store: start job: trigger id and group are required")
	}
	now := s.now().UTC()
	j.ID = JobIDForTrigger(j.Group, j.TriggerID)
	j.State = StatePending
	j.CreatedAt, j.UpdatedAt = now, now
	j.Version = 1
	j.History = []Transition{{To: StatePending, At: now, Note: "trigger " + j.Trigger}}
	item, err := s.jobItem(j)
	if err != nil {
		return nil, "", err
	}
	trig := map[string]types.AttributeValue{
		"trigger_id": sAttr(j.Group + "/" + j.TriggerID), "job_id": sAttr(j.ID),
		"expires_at": nAttr(now.Add(TriggerTTL).Unix()),
	}
	cond := "attribute_not_exists(active_job)"
	vals := map[string]types.AttributeValue{":j": sAttr(j.ID)}
	upd := "SET active_job = :j"
	if cooldown > 0 {
		cond += " AND (attribute_not_exists(last_alarm_at) OR last_alarm_at <= :cut)"
		vals[":cut"] = nAttr(now.Add(-cooldown).Unix())
		vals[":now"] = nAttr(now.Unix())
		upd += ", last_alarm_at = :now"
	}
	start := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.tables.Triggers), Item: trig, ConditionExpression: aws.String("attribute_not_exists(trigger_id)")}},
		{Put: &types.Put{TableName: aws.String(s.tables.Jobs), Item: item, ConditionExpression: aws.String("attribute_not_exists(job_id)")}},
		{Update: &types.Update{
			TableName: aws.String(s.tables.Groups), Key: map[string]types.AttributeValue{"group": sAttr(j.LockKey())},
			UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond), ExpressionAttributeValues: vals,
		}},
	}}
	var reason string
	for attempt := 0; reason == ""; attempt++ {
		_, err = s.db.TransactWriteItems(ctx, start)
		if err == nil {
			return j, Started, nil
		}
		if !conditionFailed(err) {
			return nil, "", fmt.Errorf("store: start job for trigger %s: %w", j.TriggerID, err)
		}
		if prev, err := s.jobForTrigger(ctx, j.Group+"/"+j.TriggerID); err == nil {
			return s.ownOrDuplicate(ctx, j, prev)
		} else if !errors.Is(err, ErrNotFound) {
			return nil, "", err
		}
		head, err := s.GroupHead(ctx, j.LockKey())
		if err != nil {
			return nil, "", err
		}
		switch {
		case head.ActiveJob != "":
			reason = "job " + head.ActiveJob + " is already running for " + j.LockKey()
		case cooldown > 0 && head.LastAlarmAt.Unix() > now.Add(-cooldown).Unix():
			reason = fmt.Sprintf("alarm cooldown %s: last alarm rotation at %s", cooldown, head.LastAlarmAt.Format(time.RFC3339))
		case attempt >= 3:
			reason = "lock busy"
		default:
			// Nothing visible refused it: a concurrent transaction on the
			// lock item (TransactionConflict) or one that has not yet
			// committed. Try again shortly rather than skip the trigger.
			select {
			case <-ctx.Done():
				return nil, "", ctx.Err()
			case <-time.After(time.Duration(20<<attempt) * time.Millisecond):
			}
		}
	}
	j.State = StateSkipped
	j.Reason = reason
	j.History = append(j.History, Transition{From: StatePending, To: StateSkipped, At: now, Note: reason})
	if item, err = s.jobItem(j); err != nil {
		return nil, "", err
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.tables.Triggers), Item: trig, ConditionExpression: aws.String("attribute_not_exists(trigger_id)")}},
		{Put: &types.Put{TableName: aws.String(s.tables.Jobs), Item: item, ConditionExpression: aws.String("attribute_not_exists(job_id)")}},
	}})
	if err != nil {
		if conditionFailed(err) {
			// Another delivery of this trigger recorded it meanwhile, or
			// this call's start took effect and its answer was lost.
			if prev, err := s.jobForTrigger(ctx, j.Group+"/"+j.TriggerID); err == nil {
				return s.ownOrDuplicate(ctx, j, prev)
			}
		}
		return nil, "", fmt.Errorf("store: record skipped trigger %s: %w", j.TriggerID, err)
	}
	return j, Skipped, nil
}

// ownOrDuplicate decides what prev, the job found recorded for j's
// trigger, is to this call. Another delivery's job (created at another
// time) makes this one a Duplicate. This call's own job (its transaction
// took effect but the answer was lost and the SDK's retry was refused) is
// Skipped when recorded so, Started when the lock names it, and otherwise
// recorded SKIPPED.
func (s *Store) ownOrDuplicate(ctx context.Context, j, prev *Job) (*Job, Outcome, error) {
	if !prev.CreatedAt.Equal(j.CreatedAt) {
		return prev, Duplicate, nil
	}
	switch {
	case prev.State == StateSkipped:
		return prev, Skipped, nil
	case prev.State != StatePending || prev.Version != 1:
		// Nothing but this call may advance its job before it answers.
		return prev, Duplicate, nil
	}
	head, err := s.GroupHead(ctx, j.LockKey())
	if err != nil {
		return nil, "", err
	}
	if head.ActiveJob == j.ID {
		return prev, Started, nil
	}
	reason := "lock busy"
	if head.ActiveJob != "" {
		reason = "job " + head.ActiveJob + " is already running for " + j.LockKey()
	}
	return s.skipOwn(ctx, prev, reason)
}

// skipOwn records j (just written as PENDING, never run, holding no lock)
// as SKIPPED with reason.
func (s *Store) skipOwn(ctx context.Context, j *Job, reason string) (*Job, Outcome, error) {
	prev := j.Version
	j.History = append(j.History, Transition{From: j.State, To: StateSkipped, At: s.now().UTC(), Note: reason})
	j.State, j.Reason, j.Version = StateSkipped, reason, j.Version+1
	item, err := s.jobItem(j)
	if err != nil {
		return nil, "", err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Jobs), Item: item,
		ConditionExpression:       aws.String("version = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(prev)},
	})
	if err != nil {
		return nil, "", wrapCond("store: record skipped job "+j.ID, err)
	}
	return j, Skipped, nil
}

func (s *Store) jobForTrigger(ctx context.Context, triggerID string) (*Job, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Triggers), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"trigger_id": sAttr(triggerID)},
	})
	if err != nil {
		return nil, fmt.Errorf("store: get trigger %s: %w", triggerID, err)
	}
	if out.Item == nil {
		return nil, ErrNotFound
	}
	return s.GetJob(ctx, getS(out.Item, "job_id"))
}

// GroupHead is the per-group (or per-lock) head item.
type GroupHead struct {
	Key         string
	ActiveJob   string
	LastAlarmAt time.Time
	Killed      bool
}

// GroupHead reads the head item for key (zero value if absent).
func (s *Store) GroupHead(ctx context.Context, key string) (GroupHead, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Groups), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"group": sAttr(key)},
	})
	if err != nil {
		return GroupHead{}, fmt.Errorf("store: group head %s: %w", key, err)
	}
	h := GroupHead{Key: key}
	if out.Item != nil {
		h.ActiveJob = getS(out.Item, "active_job")
		if n := getN(out.Item, "last_alarm_at"); n > 0 {
			h.LastAlarmAt = time.Unix(n, 0).UTC()
		}
		if b, ok := out.Item["killed"].(*types.AttributeValueMemberBOOL); ok {
			h.Killed = b.Value
		}
	}
	return h, nil
}

// SetKilled records whether the group's kill switch is engaged.
func (s *Store) SetKilled(ctx context.Context, group string, killed bool) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.tables.Groups), Key: map[string]types.AttributeValue{"group": sAttr(group)},
		UpdateExpression:          aws.String("SET killed = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": &types.AttributeValueMemberBOOL{Value: killed}},
	})
	if err != nil {
		return fmt.Errorf("store: set killed %s: %w", group, err)
	}
	return nil
}
