package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Capability is what an agent said it can wrap for one key spec (from hello).
type Capability struct {
	KeySpec          string   `json:"key_spec"`
	Algorithms       []string `json:"algorithms"`
	WrappingKeySpecs []string `json:"wrapping_key_specs"`
}

// Connection is one live agent websocket.
type Connection struct {
	ID           string       `json:"id"`
	AgentID      string       `json:"agent_id"`
	Pool         string       `json:"hsm_pool"`
	Identity     []byte       `json:"identity,omitempty"` // DER SPKI of the agent identity key
	Hello        bool         `json:"hello"`              // a verified hello was received
	Capabilities []Capability `json:"capabilities,omitempty"`
	ConnectedAt  time.Time    `json:"connected_at"`
	LastSeen     time.Time    `json:"last_seen"`
	// GoneAt is when a PostToConnection to it answered GoneException. The
	// connection gets no requests while set; a later message from it (API
	// Gateway only delivers from live connections) clears it, $disconnect
	// deletes the record.
	GoneAt time.Time `json:"gone_at,omitzero"`
	// Lapse is how long the connection may stay silent before it counts as
	// gone (protocol.Hello.HeartbeatLapse of its hello).
	Lapse time.Duration `json:"lapse,omitempty"`
	// DrainingAt is when the agent said it is draining (protocol.Draining):
	// it gets no new requests and its outstanding ones go elsewhere.
	DrainingAt time.Time `json:"draining_at,omitzero"`
}

// PutConnection records (or replaces) a connection.
func (s *Store) PutConnection(ctx context.Context, c *Connection) error {
	doc, err := encodeDoc(c)
	if err != nil {
		return err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.tables.Connections),
		Item: map[string]types.AttributeValue{
			"connection_id": sAttr(c.ID), "hsm_pool": sAttr(c.Pool), "agent_id": sAttr(c.AgentID), "doc": doc,
		},
	})
	if err != nil {
		return fmt.Errorf("store: put connection %s: %w", c.ID, err)
	}
	return nil
}

// GetConnection reads one connection.
func (s *Store) GetConnection(ctx context.Context, id string) (*Connection, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Connections), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"connection_id": sAttr(id)},
	})
	if err != nil {
		return nil, fmt.Errorf("store: get connection %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("store: connection %s: %w", id, ErrNotFound)
	}
	var c Connection
	if err := decodeDoc(out.Item, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// DeleteConnection forgets a connection (disconnect, GoneException).
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.tables.Connections),
		Key:       map[string]types.AttributeValue{"connection_id": sAttr(id)},
	})
	if err != nil {
		return fmt.Errorf("store: delete connection %s: %w", id, err)
	}
	return nil
}

// ConnectionsInPool lists the connections of an HSM pool.
func (s *Store) ConnectionsInPool(ctx context.Context, pool string) ([]*Connection, error) {
	res, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Connections),
		IndexName:                 aws.String(IndexByPool),
		KeyConditionExpression:    aws.String("hsm_pool = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": sAttr(pool)},
	})
	if err != nil {
		return nil, fmt.Errorf("store: connections in %s: %w", pool, err)
	}
	out := make([]*Connection, 0, len(res.Items))
	for _, it := range res.Items {
		var c Connection
		if err := decodeDoc(it, &c); err != nil {
			return nil, err
		}
		out = append(out, &c)
	}
	return out, nil
}

// CountConnections counts all connections (metric: agents connected).
func (s *Store) CountConnections(ctx context.Context) (int, error) {
	res, err := s.db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.tables.Connections), Select: types.SelectCount})
	if err != nil {
		return 0, fmt.Errorf("store: count connections: %w", err)
	}
	return int(res.Count), nil
}
