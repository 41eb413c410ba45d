package cfntemplate

import (
	"fmt"
	"path/filepath"
	"strings"
)

// TypeNestedStack is a nested stack: its own template, whose parameters the
// parent's resource passes.
const TypeNestedStack = "AWS::CloudFormation::Stack"

// NestedSuffix ends the file name of a nested stack's template in a cloud
// assembly (CDK writes <Parent><Id><hash>.nested.template.json).
const NestedSuffix = ".nested.template.json"

// mergeNested folds every nested stack of t into t, as one view of what
// the deployment creates: each nested template (CDK's aws:asset:path
// metadata on the AWS::CloudFormation::Stack resource, a file of the same
// assembly) is loaded (its own nested stacks too), each {"Ref": parameter}
// in its resources is replaced by the expression the parent passes for
// that parameter (so references resolve against the parent's resources),
// and its resources join t's. A logical id that both define, a nested
// stack without its template or a parameter the parent does not pass is an
// error naming it.
func (t *Template) mergeNested() error {
	for _, r := range t.OfType(TypeNestedStack) {
		file := str(r.Metadata["aws:asset:path"])
		if file == "" || !strings.HasSuffix(file, NestedSuffix) {
			return fmt.Errorf("cfntemplate: template %s: nested stack %s names no %s (aws:asset:path metadata)", t.Path, r.LogicalID, NestedSuffix)
		}
		child, err := Load(filepath.Join(t.Dir, file))
		if err != nil {
			return fmt.Errorf("cfntemplate: nested stack %s: %w", r.LogicalID, err)
		}
		params, _ := r.Properties["Parameters"].(map[string]any)
		for name := range child.Parameters {
			if _, ok := params[name]; !ok {
				return fmt.Errorf("cfntemplate: nested stack %s: parameter %s of %s is not passed by %s", r.LogicalID, name, child.Path, t.Path)
			}
		}
		for id, cr := range child.Resources {
			if _, dup := t.Resources[id]; dup {
				return fmt.Errorf("cfntemplate: nested stack %s: resource %s is also in %s", r.LogicalID, id, t.Path)
			}
			cr.Properties, _ = substituteRefs(cr.Properties, params).(map[string]any)
			if cr.Properties == nil {
				cr.Properties = map[string]any{}
			}
			t.Resources[id] = cr
		}
	}
	return nil
}

// substituteRefs copies v with every {"Ref": p} for a p of params replaced
// by (a copy of) params[p].
func substituteRefs(v any, params map[string]any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			if p, ok := x["Ref"].(string); ok {
				if e, ok := params[p]; ok {
					return substituteRefs(e, nil)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = substituteRefs(e, params)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = substituteRefs(e, params)
		}
		return out
	}
	return v
}
