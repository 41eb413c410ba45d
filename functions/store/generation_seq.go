package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ClaimGeneration returns a generation number for group that is greater
// than after (the latest recorded generation) and than every number claimed
// before. Failed jobs consume their numbers: the agent pins the HSM label
// kf/<group>/<generation> to the KMS key it was first wrapped for, so a
// number must never be handed to a second KMS key.
func (s *Store) ClaimGeneration(ctx context.Context, group string, after int64) (int64, error) {
	key := map[string]types.AttributeValue{"group": sAttr(group)}
	for attempt := 0; attempt < 8; attempt++ {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.tables.Groups), Key: key, ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String("gen_seq"),
		})
		if err != nil {
			return 0, fmt.Errorf("store: claim generation %s: %w", group, err)
		}
		seq, has := int64(0), false
		if out.Item != nil {
			_, has = out.Item["gen_seq"]
			seq = getN(out.Item, "gen_seq")
		}
		n := max(seq, after) + 1
		in := &dynamodb.UpdateItemInput{
			TableName: aws.String(s.tables.Groups), Key: key,
			UpdateExpression:          aws.String("SET gen_seq = :n"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": nAttr(n)},
			ConditionExpression:       aws.String("attribute_not_exists(gen_seq)"),
		}
		if has {
			in.ConditionExpression = aws.String("gen_seq = :old")
			in.ExpressionAttributeValues[":old"] = nAttr(seq)
		}
		_, err = s.db.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return n, nil
		case errors.As(err, &ccf):
			continue // claimed concurrently: read again
		default:
			return 0, fmt.Errorf("store: claim generation %s: %w", group, err)
		}
	}
	return 0, fmt.Errorf("store: claim generation %s: %w", group, ErrConflict)
}
