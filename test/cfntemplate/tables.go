package cfntemplate

import "fmt"

// KeyElement is one attribute of a key schema.
type KeyElement struct{ AttributeName, KeyType string }

// Attribute is one AttributeDefinitions entry.
type Attribute struct{ AttributeName, AttributeType string }

// Index is a global secondary index.
type Index struct {
	IndexName      string
	KeySchema      []KeyElement
	ProjectionType string
}

// Table is the typed view of an AWS::DynamoDB::Table or GlobalTable.
type Table struct {
	LogicalID, Type string
	// Name is TableName (required here: the sandbox creates tables by name).
	Name                string
	Attributes          []Attribute
	KeySchema           []KeyElement
	GlobalIndexes       []Index
	TimeToLiveAttribute string
	StreamViewType      string
	BillingMode         string
	Resource            *Resource
}

// Tables lists every DynamoDB table of the template, sorted by logical id.
func (t *Template) Tables() ([]Table, error) {
	var out []Table
	for _, typ := range []string{TypeTable, TypeGlobalTable} {
		for _, r := range t.OfType(typ) {
			p := r.Properties
			tb := Table{LogicalID: r.LogicalID, Type: typ, Name: str(p["TableName"]), BillingMode: str(p["BillingMode"]), Resource: r}
			if tb.Name == "" {
				return nil, fmt.Errorf("cfntemplate: table %s in %s has no literal TableName", r.LogicalID, t.Path)
			}
			for _, a := range list(p["AttributeDefinitions"]) {
				m, _ := a.(map[string]any)
				tb.Attributes = append(tb.Attributes, Attribute{str(m["AttributeName"]), str(m["AttributeType"])})
			}
			tb.KeySchema = keySchema(p["KeySchema"])
			for _, g := range list(p["GlobalSecondaryIndexes"]) {
				m, _ := g.(map[string]any)
				proj, _ := m["Projection"].(map[string]any)
				tb.GlobalIndexes = append(tb.GlobalIndexes, Index{IndexName: str(m["IndexName"]), KeySchema: keySchema(m["KeySchema"]), ProjectionType: str(proj["ProjectionType"])})
			}
			if ttl, ok := p["TimeToLiveSpecification"].(map[string]any); ok && ttl["Enabled"] != false {
				tb.TimeToLiveAttribute = str(ttl["AttributeName"])
			}
			if s, ok := p["StreamSpecification"].(map[string]any); ok {
				tb.StreamViewType = str(s["StreamViewType"])
			}
			if len(tb.KeySchema) == 0 {
				return nil, fmt.Errorf("cfntemplate: table %s in %s has no KeySchema", r.LogicalID, t.Path)
			}
			out = append(out, tb)
		}
	}
	return out, nil
}

func keySchema(v any) []KeyElement {
	var out []KeyElement
	for _, k := range list(v) {
		m, _ := k.(map[string]any)
		out = append(out, KeyElement{str(m["AttributeName"]), str(m["KeyType"])})
	}
	return out
}
