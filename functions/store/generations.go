package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// GenState is a generation's state.
type GenState string

// Generation states.
const (
	GenCurrent  GenState = "CURRENT"  // the alias (or key) uses this material now
	GenPrevious GenState = "PREVIOUS" // superseded but still associated (decrypts old data)
	GenKilled   GenState = "KILLED"   // material deleted from KMS by the kill switch
)

// Generation is one piece of key material in KMS and its HSM twin.
type Generation struct {
	Group         string   `json:"group"`
	Generation    int64    `json:"generation"`
	KeyARN        string   `json:"key_arn"`
	KeyMaterialID string   `json:"key_material_id,omitempty"`
	HSMLabel      string   `json:"hsm_label"`
	KeySpec       string   `json:"key_spec"`
	Mode          Mode     `json:"mode"`
	State         GenState `json:"state"`
	// InPlaceRotations counts on-demand rotations done on KeyARN up to and
	// including this generation (hybrid mode compares it with the cap).
	InPlaceRotations int       `json:"in_place_rotations"`
	CreatedAt        time.Time `json:"created_at"`
	RotatedAt        time.Time `json:"rotated_at,omitzero"`
	ExpiresAt        time.Time `json:"expires_at,omitzero"`
	JobID            string    `json:"job_id"`
}

func genItem(g *Generation) (map[string]types.AttributeValue, error) {
	doc, err := encodeDoc(g)
	if err != nil {
		return nil, err
	}
	return map[string]types.AttributeValue{
		"group": sAttr(g.Group), "generation": nAttr(g.Generation),
		"state": sAttr(string(g.State)), "doc": doc,
	}, nil
}

// PutGeneration records a new generation; it fails with ErrConflict if the
// generation number exists (two writers racing for the same number).
func (s *Store) PutGeneration(ctx context.Context, g *Generation) error {
	item, err := genItem(g)
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Generations), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(generation)"),
	})
	if err != nil {
		return wrapCond(fmt.Sprintf("store: put generation %s/%d", g.Group, g.Generation), err)
	}
	return nil
}

// UpdateGeneration rewrites an existing generation.
func (s *Store) UpdateGeneration(ctx context.Context, g *Generation) error {
	item, err := genItem(g)
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Generations), Item: item,
		ConditionExpression: aws.String("attribute_exists(generation)"),
	})
	if err != nil {
		return wrapCond(fmt.Sprintf("store: update generation %s/%d", g.Group, g.Generation), err)
	}
	return nil
}

// Generations lists a group's generations, oldest first.
func (s *Store) Generations(ctx context.Context, group string) ([]*Generation, error) {
	var out []*Generation
	var start map[string]types.AttributeValue
	for {
		res, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.tables.Generations),
			KeyConditionExpression:    aws.String("#g = :g"),
			ExpressionAttributeNames:  map[string]string{"#g": "group"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":g": sAttr(group)},
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("store: generations of %s: %w", group, err)
		}
		for _, it := range res.Items {
			var g Generation
			if err := decodeDoc(it, &g); err != nil {
				return nil, err
			}
			out = append(out, &g)
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = res.LastEvaluatedKey
	}
}

// Latest returns the group's newest generation, or ErrNotFound.
func (s *Store) Latest(ctx context.Context, group string) (*Generation, error) {
	gs, err := s.Generations(ctx, group)
	if err != nil {
		return nil, err
	}
	if len(gs) == 0 {
		return nil, fmt.Errorf("store: group %s has no generation: %w", group, ErrNotFound)
	}
	return gs[len(gs)-1], nil
}

// Generation reads one generation.
func (s *Store) Generation(ctx context.Context, group string, gen int64) (*Generation, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Generations), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"group": sAttr(group), "generation": nAttr(gen)},
	})
	if err != nil {
		return nil, fmt.Errorf("store: generation %s/%d: %w", group, gen, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("store: generation %s/%d: %w", group, gen, ErrNotFound)
	}
	var g Generation
	if err := decodeDoc(out.Item, &g); err != nil {
		return nil, err
	}
	return &g, nil
}
