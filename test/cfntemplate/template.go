package cfntemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Resource types this package gives a typed view of.
const (
	TypeFunction      = "AWS::Lambda::Function"
	TypeRole          = "AWS::IAM::Role"
	TypePolicy        = "AWS::IAM::Policy"
	TypeManagedPolicy = "AWS::IAM::ManagedPolicy"
	TypeTable         = "AWS::DynamoDB::Table"
	TypeGlobalTable   = "AWS::DynamoDB::GlobalTable"
	TypeSchedule      = "AWS::Scheduler::Schedule"
	TypeEventsRule    = "AWS::Events::Rule"
)

// Resource is one entry of the template's Resources, as written.
type Resource struct {
	LogicalID  string         `json:"-"`
	Type       string         `json:"Type"`
	Properties map[string]any `json:"Properties"`
	Metadata   map[string]any `json:"Metadata"`
	DependsOn  any            `json:"DependsOn"`
}

// Template is a loaded template.
type Template struct {
	// Path is the file it was read from; Dir its folder (asset paths in
	// resource metadata are relative to it).
	Path, Dir  string
	Parameters map[string]map[string]any
	Outputs    map[string]map[string]any
	Resources  map[string]*Resource
}

// Load reads a template file, with its nested stacks merged in (nested.go).
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cfntemplate: read template: %w", err)
	}
	var doc struct {
		Parameters map[string]map[string]any `json:"Parameters"`
		Outputs    map[string]map[string]any `json:"Outputs"`
		Resources  map[string]*Resource      `json:"Resources"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("cfntemplate: template %s is not CloudFormation JSON: %w", path, err)
	}
	if len(doc.Resources) == 0 {
		return nil, fmt.Errorf("cfntemplate: template %s has no Resources", path)
	}
	for id, r := range doc.Resources {
		if r == nil || r.Type == "" {
			return nil, fmt.Errorf("cfntemplate: template %s: resource %q has no Type", path, id)
		}
		r.LogicalID = id
		if r.Properties == nil {
			r.Properties = map[string]any{}
		}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("cfntemplate: %w", err)
	}
	t := &Template{Path: abs, Dir: filepath.Dir(abs), Parameters: doc.Parameters, Outputs: doc.Outputs, Resources: doc.Resources}
	if err := t.mergeNested(); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadStack reads <cdkOut>/<stack>.template.json; with stack empty, the
// only *.template.json in cdkOut.
func LoadStack(cdkOut, stack string) (*Template, error) {
	if stack != "" {
		return Load(filepath.Join(cdkOut, stack+".template.json"))
	}
	all, _ := filepath.Glob(filepath.Join(cdkOut, "*.template.json"))
	var m []string
	for _, p := range all {
		if !strings.HasSuffix(p, NestedSuffix) { // part of its parent's view
			m = append(m, p)
		}
	}
	switch len(m) {
	case 0:
		return nil, fmt.Errorf("cfntemplate: no *.template.json in %s (run `make synth`)", cdkOut)
	case 1:
		return Load(m[0])
	default:
		return nil, fmt.Errorf("cfntemplate: %d stacks in %s (%s): name one", len(m), cdkOut, strings.Join(m, ", "))
	}
}

// OfType lists the resources of one type, sorted by logical id.
func (t *Template) OfType(typ string) []*Resource {
	var out []*Resource
	for _, r := range t.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LogicalID < out[j].LogicalID })
	return out
}

// Resource returns one resource by logical id.
func (t *Template) Resource(logicalID string) (*Resource, bool) {
	r, ok := t.Resources[logicalID]
	return r, ok
}

// refTarget returns the logical id v refers to when v is {"Ref": id} or
// {"Fn::GetAtt": [id, attr]} / {"Fn::GetAtt": "id.attr"}.
func refTarget(v any) string {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return ""
	}
	if id, ok := m["Ref"].(string); ok {
		return id
	}
	switch g := m["Fn::GetAtt"].(type) {
	case []any:
		if len(g) == 2 {
			s, _ := g[0].(string)
			return s
		}
	case string:
		id, _, _ := strings.Cut(g, ".")
		return id
	}
	return ""
}

func list(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		var f float64
		if _, err := fmt.Sscan(x, &f); err == nil {
			return f, true
		}
	}
	return 0, false
}
