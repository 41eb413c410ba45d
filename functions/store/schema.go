package store

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyferry/keyferry/functions/pacer"
)

// Tables names the tables of the store, and the pacing table of the
// account-wide KMS pacer (functions/pacer.Ledger).
type Tables struct {
	Jobs, Generations, Connections, Triggers, Groups, Pacing string
}

// TablesWithPrefix returns the default table names under prefix.
func TablesWithPrefix(prefix string) Tables {
	return Tables{
		Jobs:        prefix + "jobs",
		Generations: prefix + "generations",
		Connections: prefix + "connections",
		Triggers:    prefix + "triggers",
		Groups:      prefix + "groups",
		Pacing:      prefix + "pacing",
	}
}

// Index names.
const (
	IndexByState = "by_state"
	IndexByPool  = "by_pool"
)

func attr(name string, t types.ScalarAttributeType) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: t}
}

func key(name string, t types.KeyType) types.KeySchemaElement {
	return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: t}
}

func gsi(name string, keys ...types.KeySchemaElement) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName:  aws.String(name),
		KeySchema:  keys,
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

// TableSchemas describes every table (on-demand billing, keys, GSIs) as
// CreateTable inputs; infra/ and the sandbox create the same tables.
func TableSchemas(t Tables) []dynamodb.CreateTableInput {
	od := types.BillingModePayPerRequest
	return []dynamodb.CreateTableInput{
		{
			TableName:   aws.String(t.Jobs),
			BillingMode: od,
			AttributeDefinitions: []types.AttributeDefinition{
				attr("job_id", types.ScalarAttributeTypeS),
				attr("state", types.ScalarAttributeTypeS), attr("deadline", types.ScalarAttributeTypeN),
			},
			KeySchema: []types.KeySchemaElement{key("job_id", types.KeyTypeHash)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
				gsi(IndexByState, key("state", types.KeyTypeHash), key("deadline", types.KeyTypeRange)),
			},
		},
		{
			TableName:            aws.String(t.Generations),
			BillingMode:          od,
			AttributeDefinitions: []types.AttributeDefinition{attr("group", types.ScalarAttributeTypeS), attr("generation", types.ScalarAttributeTypeN)},
			KeySchema:            []types.KeySchemaElement{key("group", types.KeyTypeHash), key("generation", types.KeyTypeRange)},
		},
		{
			TableName:   aws.String(t.Connections),
			BillingMode: od,
			AttributeDefinitions: []types.AttributeDefinition{
				attr("connection_id", types.ScalarAttributeTypeS), attr("hsm_pool", types.ScalarAttributeTypeS),
			},
			KeySchema:              []types.KeySchemaElement{key("connection_id", types.KeyTypeHash)},
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{gsi(IndexByPool, key("hsm_pool", types.KeyTypeHash), key("connection_id", types.KeyTypeRange))},
		},
		{
			TableName:            aws.String(t.Triggers),
			BillingMode:          od,
			AttributeDefinitions: []types.AttributeDefinition{attr("trigger_id", types.ScalarAttributeTypeS)},
			KeySchema:            []types.KeySchemaElement{key("trigger_id", types.KeyTypeHash)},
		},
		{
			TableName:            aws.String(t.Groups),
			BillingMode:          od,
			AttributeDefinitions: []types.AttributeDefinition{attr("group", types.ScalarAttributeTypeS)},
			KeySchema:            []types.KeySchemaElement{key("group", types.KeyTypeHash)},
		},
		{
			TableName:            aws.String(t.Pacing),
			BillingMode:          od,
			AttributeDefinitions: []types.AttributeDefinition{attr(pacer.LedgerKey, types.ScalarAttributeTypeS)},
			KeySchema:            []types.KeySchemaElement{key(pacer.LedgerKey, types.KeyTypeHash)},
		},
	}
}
