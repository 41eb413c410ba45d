package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyferry/keyferry/shared/groups"
)

// State is a job's position in the rotation state machine.
type State string

// Job states. The engine moves a job forward one step at a time with a
// conditional write; SUCCEEDED, FAILED and SKIPPED are terminal.
const (
	StatePending   State = "PENDING"   // created, lock held
	StateKeyReady  State = "KEY_READY" // target KMS key exists (KeyARN set)
	StateParams    State = "PARAMS"    // import parameters fetched
	StateRequested State = "REQUESTED" // wrap_request sent to an agent
	StateResult    State = "RESULT"    // verified wrap_result stored
	StateImported  State = "IMPORTED"  // ImportKeyMaterial done
	StateRotating  State = "ROTATING"  // in-place: RotateKeyOnDemand issued
	StateVerified  State = "VERIFIED"  // post-import verification passed
	StateSwitched  State = "SWITCHED"  // alias moved / generation recorded
	StateSucceeded State = "SUCCEEDED"
	StateFailed    State = "FAILED"
	StateSkipped   State = "SKIPPED"
)

// Terminal reports whether s ends a job.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateSkipped
}

// Kind is what a job does.
type Kind string

// Job kinds.
const (
	KindRotate   Kind = "rotate"   // new material (alias-swap, in-place or hybrid)
	KindReimport Kind = "reimport" // re-import an existing generation's material (keepalive, restore)
)

// Mode is how a job (and the generation it records) put material into KMS.
type Mode string

// Modes recorded on jobs and generations (the stored values).
const (
	ModeAliasSwap      = Mode(groups.ModeAliasSwap) // a new KMS key, then the alias moves
	ModeInPlace        = Mode(groups.ModeInPlace)   // new material on the same key
	ModeReimport  Mode = "reimport"                 // an existing generation's material again
)

// Transition is one entry of a job's state history.
type Transition struct {
	From State     `json:"from"`
	To   State     `json:"to"`
	At   time.Time `json:"at"`
	Note string    `json:"note,omitempty"`
}

// Job is one rotation or re-import, with everything needed to resume it:
// its identity and progress, then what each phase of the state machine
// (engine/machine.go) decided or received, in the order the phases run.
// The phases are embedded: their fields read as the job's own (j.KeyARN),
// and encoding/json promotes them, so the stored doc is one flat object
// with the names it always had (TestJobItemNamesUnchanged).
type Job struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	Kind      Kind      `json:"kind"`
	Trigger   string    `json:"trigger"`
	TriggerID string    `json:"trigger_id"`
	State     State     `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Deadline  time.Time `json:"deadline"`
	Attempts  int       `json:"attempts"`

	Target   // PENDING: the key and generation
	Replicas // multi-Region groups: the Region being imported into
	Params   // KEY_READY -> PARAMS: GetParametersForImport
	Request  // PARAMS -> REQUESTED: the wrap_request
	Wrap     // REQUESTED -> RESULT: the agent's wrap_result
	Import   // RESULT -> IMPORTED (-> ROTATING): ImportKeyMaterial
	Switch   // VERIFIED -> SWITCHED: the alias

	History []Transition `json:"history"`
}

// Target is what the plan step decided: the key the job imports into and
// the generation it makes (or, for a reimport, re-arms).
type Target struct {
	// Mode actually used for this rotation: alias-swap or in-place.
	Mode   Mode `json:"mode,omitempty"`
	NewKey bool `json:"new_key,omitempty"`
	// CreateKeyAttempted is set before CreateKey, so a resumed job looks for
	// the key it may have created (tag keyferry:job) before making another.
	CreateKeyAttempted bool   `json:"create_key_attempted,omitempty"`
	KeyARN             string `json:"key_arn,omitempty"`
	PreviousKeyARN     string `json:"previous_key_arn,omitempty"`
	Generation         int64  `json:"generation,omitempty"`
	HSMLabel           string `json:"hsm_label,omitempty"`
	// ReimportGeneration names the generation a reimport job re-arms.
	ReimportGeneration int64 `json:"reimport_generation,omitempty"`
}

// Replicas is a multi-Region group's progress (engine/regions.go): Region
// is the replica Region the job is importing into now ("" for the
// primary's), KeyARN then names that Region's replica and PrimaryKeyARN the
// primary; RegionsDone lists the replica Regions already imported and
// verified, so a resumed job redoes only what is missing.
type Replicas struct {
	Region        string   `json:"region,omitempty"`
	PrimaryKeyARN string   `json:"primary_key_arn,omitempty"`
	RegionsDone   []string `json:"regions_done,omitempty"`
}

// Params are the import parameters KMS gave for KeyARN.
type Params struct {
	WrappingAlgorithm string    `json:"wrapping_algorithm,omitempty"`
	WrappingKeySpec   string    `json:"wrapping_key_spec,omitempty"`
	WrappingPublicKey []byte    `json:"wrapping_public_key,omitempty"`
	ImportToken       []byte    `json:"import_token,omitempty"`
	ParametersValidTo time.Time `json:"parameters_valid_to,omitzero"`
}

// Request is the wrap_request sent and the agent it went to.
type Request struct {
	RequestID    string    `json:"request_id,omitempty"`
	Nonce        []byte    `json:"nonce,omitempty"`
	Challenge    []byte    `json:"challenge,omitempty"`
	ConnectionID string    `json:"connection_id,omitempty"`
	AgentID      string    `json:"agent_id,omitempty"`
	RequestedAt  time.Time `json:"requested_at,omitzero"`
}

// Wrap is the verified wrap_result.
type Wrap struct {
	WrappedMaterial []byte `json:"wrapped_material,omitempty"`
	PublicKey       []byte `json:"public_key,omitempty"`
	ChallengeMAC    []byte `json:"challenge_mac,omitempty"`
	HSMKeyID        string `json:"hsm_key_id,omitempty"`
}

// Import is the material's import into KMS (and, in place, its rotation).
type Import struct {
	// ImportSent is set (and saved) before the first in-place
	// NEW_KEY_MATERIAL import, after any PENDING_ROTATION material left by
	// an earlier job was removed: from then on the key's pending material
	// can only be this job's own, so a ConflictException on a retried
	// import (the first one took effect, its answer was lost) names it.
	ImportSent            bool      `json:"import_sent,omitempty"`
	PreviousKeyMaterialID string    `json:"previous_key_material_id,omitempty"`
	KeyMaterialID         string    `json:"key_material_id,omitempty"`
	ValidTo               time.Time `json:"valid_to,omitzero"`
}

// Switch is the alias move of a new key.
type Switch struct {
	// AliasMoveAttempted is set (and saved) before UpdateAlias/CreateAlias
	// points the group's alias at the job's new key: from then on the key
	// may have served traffic, so a failed job's cleanup never deletes it.
	AliasMoveAttempted bool `json:"alias_move_attempted,omitempty"`
}

// JobIDForTrigger derives the job id from the group and the trigger id, so
// every delivery of one trigger names the same job.
func JobIDForTrigger(group, triggerID string) string {
	h := sha256.Sum256([]byte(group + "\x00" + triggerID))
	return "job-" + hex.EncodeToString(h[:12])
}

func (s *Store) jobItem(j *Job) (map[string]types.AttributeValue, error) {
	doc, err := encodeDoc(j)
	if err != nil {
		return nil, err
	}
	item := map[string]types.AttributeValue{
		"job_id":   sAttr(j.ID),
		"group":    sAttr(j.Group),
		"state":    sAttr(string(j.State)),
		"deadline": nAttr(j.Deadline.Unix()),
		"version":  nAttr(j.Version),
		"doc":      doc,
	}
	return item, nil
}

// GetJob reads one job.
func (s *Store) GetJob(ctx context.Context, id string) (*Job, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.tables.Jobs),
		Key:            map[string]types.AttributeValue{"job_id": sAttr(id)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("store: get job %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("store: job %s: %w", id, ErrNotFound)
	}
	var j Job
	if err := decodeDoc(out.Item, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Advance writes j in its new state if nobody changed it since it was read
// (version check), appending a history entry. On success j.Version is bumped.
// When the new state is terminal the group lock held by j is released in the
// same transaction.
func (s *Store) Advance(ctx context.Context, j *Job, to State, note string) error {
	now := s.now().UTC()
	prev := *j
	j.History = append(j.History, Transition{From: j.State, To: to, At: now, Note: note})
	j.State = to
	j.UpdatedAt = now
	j.Version++
	item, err := s.jobItem(j)
	if err != nil {
		*j = prev
		return err
	}
	put := &types.Put{
		TableName:                 aws.String(s.tables.Jobs),
		Item:                      item,
		ConditionExpression:       aws.String("version = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(prev.Version)},
	}
	if !to.Terminal() {
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression, ExpressionAttributeValues: put.ExpressionAttributeValues})
	} else {
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: put},
			{Update: &types.Update{
				TableName:                 aws.String(s.tables.Groups),
				Key:                       map[string]types.AttributeValue{"group": sAttr(j.LockKey())},
				UpdateExpression:          aws.String("REMOVE active_job"),
				ConditionExpression:       aws.String("attribute_not_exists(active_job) OR active_job = :j"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":j": sAttr(j.ID)},
			}},
		}})
	}
	if err != nil && conditionFailed(err) && s.landed(ctx, j) {
		err = nil
	}
	if err != nil {
		*j = prev
		return wrapCond(fmt.Sprintf("store: job %s %s->%s", j.ID, prev.State, to), err)
	}
	return nil
}

// landed tells a lost race from our own write whose answer was lost: the
// SDK retries a write whose connection dropped after DynamoDB applied it,
// and the retry fails its own version condition. When the stored job is
// exactly the one written (same version, same UpdatedAt to the
// nanosecond), the write happened and the caller goes on as if answered.
func (s *Store) landed(ctx context.Context, j *Job) bool {
	have, err := s.GetJob(ctx, j.ID)
	return err == nil && have.Version == j.Version && have.UpdatedAt.Equal(j.UpdatedAt) && have.State == j.State
}

// Save writes j's fields without changing state (version-checked).
func (s *Store) Save(ctx context.Context, j *Job) error {
	prev := *j
	j.Version++
	j.UpdatedAt = s.now().UTC()
	item, err := s.jobItem(j)
	if err != nil {
		*j = prev
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Jobs), Item: item,
		ConditionExpression:       aws.String("version = :v"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": nAttr(prev.Version)},
	})
	if err != nil && conditionFailed(err) && s.landed(ctx, j) {
		err = nil
	}
	if err != nil {
		*j = prev
		return wrapCond("store: save job "+j.ID, err)
	}
	return nil
}

// JobsInState lists jobs in state st whose deadline is before (or at) before.
func (s *Store) JobsInState(ctx context.Context, st State, before time.Time) ([]*Job, error) {
	return s.JobsInStateBetween(ctx, st, time.Unix(0, 0), before)
}

// JobsInStateBetween lists jobs in state st whose deadline lies in
// [since, before] (a key condition on the by-state index: jobs outside the
// window are not read at all).
func (s *Store) JobsInStateBetween(ctx context.Context, st State, since, before time.Time) ([]*Job, error) {
	var out []*Job
	var start map[string]types.AttributeValue
	for {
		res, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                aws.String(s.tables.Jobs),
			IndexName:                aws.String(IndexByState),
			KeyConditionExpression:   aws.String("#s = :s AND deadline BETWEEN :a AND :d"),
			ExpressionAttributeNames: map[string]string{"#s": "state"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":s": sAttr(string(st)), ":a": nAttr(since.Unix()), ":d": nAttr(before.Unix()),
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("store: jobs in %s: %w", st, err)
		}
		for _, it := range res.Items {
			var j Job
			if err := decodeDoc(it, &j); err != nil {
				return nil, err
			}
			out = append(out, &j)
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = res.LastEvaluatedKey
	}
}

// LiveStates lists the non-terminal states.
func LiveStates() []State {
	return []State{StatePending, StateKeyReady, StateParams, StateRequested, StateResult, StateImported, StateRotating, StateVerified, StateSwitched}
}
