package pacer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Ledger is the account-wide half of the pacer. Every Lambda instance of
// every function shares it, because it lives in DynamoDB, not in a Go
// variable: one item per (account-region, operation) holds the
// theoretical arrival time (TAT) of GCRA, the generic cell rate algorithm
// (a token bucket expressed as "the next free slot"). A caller takes the
// next slot with one atomic ADD of the emission interval and sleeps until
// its slot, so N instances calling together are spaced one interval apart
// whatever N is.
//
// The ADD is conditional: a caller whose slot would fall after its latest
// acceptable time (its Lambda deadline, less a margin) takes no slot and
// gets a *PacedOutError at once, so a queue longer than a function's
// timeout is never paid for with slots nobody uses.
type Ledger struct {
	DB    ledgerAPI
	Table string
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// ledgerAPI is the one DynamoDB call the ledger makes.
type ledgerAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

var _ ledgerAPI = (*dynamodb.Client)(nil)

// Ledger item attributes. LedgerKey is the partition key of the pacing
// table; LedgerTTL its TTL attribute (an idle bucket's item expires).
const (
	LedgerKey = "bucket"
	LedgerTTL = "expires_at"
	ledgerTAT = "tat" // N: unix milliseconds of the next free slot
)

// ErrPacedOut is wrapped by *PacedOutError.
var ErrPacedOut = errors.New("pacer: the account's queue for this operation reaches past the caller's deadline")

// PacedOutError says that the next free slot of Op is after the caller
// could use it. No slot was taken; the caller hands the work on and tries
// again after Next. It is a pacing signal, never a job failure.
type PacedOutError struct {
	Op     string
	Next   time.Time // the queue's end when the caller asked
	Latest time.Time // the latest slot the caller could use
}

func (e *PacedOutError) Error() string {
	return fmt.Sprintf("pacer %s: next account-wide slot %s is after this caller's latest usable slot %s",
		e.Op, e.Next.UTC().Format(time.RFC3339Nano), e.Latest.UTC().Format(time.RFC3339Nano))
}

func (e *PacedOutError) Unwrap() error { return ErrPacedOut }

func (l *Ledger) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// reserve takes the next slot of bucket for a caller that can use a slot
// no later than latest, and returns its time (which may be now).
func (l *Ledger) reserve(ctx context.Context, bucket, op string, interval time.Duration, latest time.Time) (time.Time, error) {
	iv := interval.Milliseconds()
	if iv < 1 {
		iv = 1
	}
	for try := 0; ; try++ {
		now := l.now()
		out, err := l.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(l.Table),
			Key:                 map[string]types.AttributeValue{LedgerKey: &types.AttributeValueMemberS{Value: bucket}},
			UpdateExpression:    aws.String("ADD #tat :iv SET #ttl = :ttl"),
			ConditionExpression: aws.String("attribute_not_exists(#tat) OR #tat <= :latest"),
			ExpressionAttributeNames: map[string]string{
				"#tat": ledgerTAT, "#ttl": LedgerTTL,
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":iv":     num(iv),
				":latest": num(latest.UnixMilli()),
				":ttl":    num(now.Add(24 * time.Hour).Unix()),
			},
			ReturnValues:                        types.ReturnValueUpdatedNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			next := latest
			if v, ok := ccf.Item[ledgerTAT].(*types.AttributeValueMemberN); ok {
				if ms, perr := strconv.ParseInt(v.Value, 10, 64); perr == nil {
					next = time.UnixMilli(ms)
				}
			}
			return time.Time{}, &PacedOutError{Op: op, Next: next, Latest: latest}
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("pacer %s: ledger UpdateItem: %w", op, err)
		}
		tat, err := tatOf(out.Attributes)
		if err != nil {
			return time.Time{}, fmt.Errorf("pacer %s: %w", op, err)
		}
		slot := time.UnixMilli(tat - iv)
		if !slot.Before(now) {
			return slot, nil
		}
		// The bucket was idle (or is used below its rate): its TAT lies in
		// the past. Move it to now+interval, only while it is still in the
		// past, and take the slot at now. A caller that finds it moved into
		// the future meanwhile asks again and gets a future slot: so after
		// idle only one caller goes at once, and a bucket whose rate is
		// higher than its callers' pace never makes them loop.
		_, err = l.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                aws.String(l.Table),
			Key:                      map[string]types.AttributeValue{LedgerKey: &types.AttributeValueMemberS{Value: bucket}},
			UpdateExpression:         aws.String("SET #tat = :reset"),
			ConditionExpression:      aws.String("#tat < :now"),
			ExpressionAttributeNames: map[string]string{"#tat": ledgerTAT},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":reset": num(now.UnixMilli() + iv),
				":now":   num(now.UnixMilli()),
			},
		})
		if err == nil {
			return now, nil
		}
		if !errors.As(err, &ccf) {
			return time.Time{}, fmt.Errorf("pacer %s: ledger reset: %w", op, err)
		}
		// Another caller moved the bucket in between: ask again.
		if try > 64 {
			return time.Time{}, fmt.Errorf("pacer %s: ledger: bucket %s kept moving under 64 tries", op, bucket)
		}
	}
}

func tatOf(attrs map[string]types.AttributeValue) (int64, error) {
	v, ok := attrs[ledgerTAT].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("ledger: UpdateItem returned no %q number", ledgerTAT)
	}
	ms, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ledger: %q is not an integer: %w", ledgerTAT, err)
	}
	return ms, nil
}

func num(v int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
