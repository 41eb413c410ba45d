package cfntemplate

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Function is the typed view of one AWS::Lambda::Function.
type Function struct {
	LogicalID string
	// Name is the FunctionName property (e.g. "keyferry-rotate"); empty
	// when the template leaves it to CloudFormation.
	Name    string
	Handler string
	Runtime string
	// AssetDir is the absolute path of the function's code asset (the
	// aws:asset:path metadata, relative to the template's folder); empty
	// for inline or S3-only code.
	AssetDir string
	// Timeout defaults to Lambda's 3 s and MemoryMB to 128 MB when unset.
	Timeout  time.Duration
	MemoryMB int
	// Environment is Environment.Variables as written (values may be
	// intrinsics: resolve them with a Resolver).
	Environment map[string]any
	// ReservedConcurrency is ReservedConcurrentExecutions, or -1 when unset.
	ReservedConcurrency int
	// Role is the Role property as written; RoleLogicalID the role it
	// points at ({"Fn::GetAtt": [id, "Arn"]}), empty for a literal ARN.
	Role          any
	RoleLogicalID string
	Resource      *Resource
}

// Functions lists every function of the template, sorted by logical id.
func (t *Template) Functions() ([]Function, error) {
	var out []Function
	for _, r := range t.OfType(TypeFunction) {
		f, err := t.function(r)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Function finds a function by FunctionName ("keyferry-rotate"), by name
// without the "keyferry-" prefix ("rotate"), or by logical id.
func (t *Template) Function(name string) (Function, error) {
	for _, r := range t.OfType(TypeFunction) {
		fn := str(r.Properties["FunctionName"])
		if r.LogicalID == name || fn == name || (fn != "" && strings.TrimPrefix(fn, "keyferry-") == name) {
			return t.function(r)
		}
	}
	return Function{}, fmt.Errorf("cfntemplate: function %q not in template %s", name, t.Path)
}

func (t *Template) function(r *Resource) (Function, error) {
	p := r.Properties
	f := Function{
		LogicalID: r.LogicalID, Name: str(p["FunctionName"]), Handler: str(p["Handler"]), Runtime: str(p["Runtime"]),
		Timeout: 3 * time.Second, MemoryMB: 128, ReservedConcurrency: -1, Role: p["Role"], RoleLogicalID: refTarget(p["Role"]),
		Environment: map[string]any{}, Resource: r,
	}
	bad := func(prop string, v any) error {
		return fmt.Errorf("cfntemplate: function %s in %s: %s %v is not a number", r.LogicalID, t.Path, prop, v)
	}
	if v, ok := p["Timeout"]; ok {
		n, ok := num(v)
		if !ok || n <= 0 {
			return Function{}, bad("Timeout", v)
		}
		f.Timeout = time.Duration(n * float64(time.Second))
	}
	if v, ok := p["MemorySize"]; ok {
		n, ok := num(v)
		if !ok || n <= 0 {
			return Function{}, bad("MemorySize", v)
		}
		f.MemoryMB = int(n)
	}
	if v, ok := p["ReservedConcurrentExecutions"]; ok {
		n, ok := num(v)
		if !ok || n < 0 {
			return Function{}, bad("ReservedConcurrentExecutions", v)
		}
		f.ReservedConcurrency = int(n)
	}
	if env, ok := p["Environment"].(map[string]any); ok {
		if vars, ok := env["Variables"].(map[string]any); ok {
			f.Environment = vars
		}
	}
	if a := str(r.Metadata["aws:asset:path"]); a != "" {
		if filepath.IsAbs(a) {
			f.AssetDir = a
		} else {
			f.AssetDir = filepath.Join(t.Dir, a)
		}
	}
	return f, nil
}

// ResolveEnvironment resolves every environment variable of f with r.
func (f Function) ResolveEnvironment(r *Resolver) (map[string]string, error) {
	out := make(map[string]string, len(f.Environment))
	for k, v := range f.Environment {
		s, err := r.String(v)
		if err != nil {
			return nil, fmt.Errorf("cfntemplate: function %s: environment %s: %w", f.LogicalID, k, err)
		}
		out[k] = s
	}
	return out, nil
}
