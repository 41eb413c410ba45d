package store_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/dynamotest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden from the code")

// fill sets every exported field reachable in v (a pointer to a struct),
// through embedded structs, to a non-zero value, so that no omitempty or
// omitzero field is left out of its encoding.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(t, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint8:
		v.SetUint(7)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0))
		v.Set(s)
	default:
		t.Fatalf("fill: no value for a %s", v.Type())
	}
}

// keys lists the keys of a JSON object, sorted.
func keys(t *testing.T, doc []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func golden(t *testing.T, name string, got []string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(b))
	if !slices.Equal(got, want) {
		t.Errorf("%s: the stored names changed (existing items and the other functions read them):\n got %v\nwant %v", name, got, want)
	}
}

// TestJobItemNamesUnchanged stores a fully populated Job and reads the raw
// item back: its attribute names and the names inside its doc (the job as
// JSON; the phase structs are embedded, and encoding/json promotes an
// embedded struct's fields) are exactly the golden lists, and the doc
// decodes back to the same Job.
func TestJobItemNamesUnchanged(t *testing.T) {
	ctx := context.Background()
	db := dynamotest.Client(t)
	tables := dynamotest.Tables(t)
	s := store.New(db, tables)
	var full store.Job
	fill(t, reflect.ValueOf(&full))
	full.Group, full.TriggerID = "g-doc", "t-doc"
	j, _, err := s.StartJob(ctx, &full, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, version := j.ID, j.Version
	fill(t, reflect.ValueOf(j)) // StartJob reset the state and history
	j.ID, j.Version = id, version
	if err := s.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tables.Jobs),
		Key: map[string]types.AttributeValue{"job_id": &types.AttributeValueMemberS{Value: j.ID}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	var attrs []string
	for k := range out.Item {
		attrs = append(attrs, k)
	}
	slices.Sort(attrs)
	golden(t, "job_item_attributes.golden", attrs)
	doc, ok := out.Item["doc"].(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("item has no string doc: %v", out.Item)
	}
	golden(t, "job_doc_keys.golden", keys(t, []byte(doc.Value)))
	back, err := s.GetJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, j) {
		t.Errorf("round trip changed the job:\n got %+v\nwant %+v", back, j)
	}
}
