package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// dynamoAPI is the slice of the DynamoDB client the store uses.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ dynamoAPI = (*dynamodb.Client)(nil)

// Errors callers branch on.
var (
	// ErrConflict: a conditional write lost (someone else changed the item).
	ErrConflict = errors.New("store: conditional write failed (concurrent change)")
	// ErrNotFound: no such item.
	ErrNotFound = errors.New("store: not found")
)

// Store is the DynamoDB-backed state of the control plane.
type Store struct {
	db     dynamoAPI
	tables Tables
	now    func() time.Time
}

// New returns a Store over db with the given table names.
func New(db dynamoAPI, tables Tables) *Store {
	return &Store{db: db, tables: tables, now: time.Now}
}

// Tables returns the table names.
func (s *Store) Tables() Tables { return s.tables }

func sAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func nAttr(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func getS(item map[string]types.AttributeValue, k string) string {
	if v, ok := item[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(item map[string]types.AttributeValue, k string) int64 {
	if v, ok := item[k].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func decodeDoc(item map[string]types.AttributeValue, dst any) error {
	doc := getS(item, "doc")
	if doc == "" {
		return fmt.Errorf("store: item has no doc attribute")
	}
	if err := json.Unmarshal([]byte(doc), dst); err != nil {
		return fmt.Errorf("store: decode doc: %w", err)
	}
	return nil
}

func encodeDoc(v any) (types.AttributeValue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encode doc: %w", err)
	}
	return sAttr(string(b)), nil
}

// conditionFailed reports whether err is a lost condition (plain or in a transaction).
func conditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	var tc *types.TransactionCanceledException
	return errors.As(err, &cf) || errors.As(err, &tc)
}

func wrapCond(op string, err error) error {
	if conditionFailed(err) {
		return fmt.Errorf("%s: %w (%v)", op, ErrConflict, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
