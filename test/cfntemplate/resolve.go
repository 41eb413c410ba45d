package cfntemplate

import (
	"fmt"
	"regexp"
	"strings"
)

// Resolver evaluates intrinsic functions against values the caller
// supplies. Refs maps a logical id or pseudo parameter ("AWS::Region",
// "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix") to what Ref
// returns; Attrs maps "LogicalID.Attribute" to what Fn::GetAtt returns.
// A reference with no supplied value is an error naming it.
type Resolver struct {
	Refs  map[string]any
	Attrs map[string]any
}

// Pseudo returns the pseudo parameters of an account and region.
func Pseudo(account, region string) map[string]any {
	return map[string]any{
		"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "keyferry-" + account + "-" + region,
		"AWS::NoValue": nil,
	}
}

// Resolve returns v with every intrinsic function evaluated.
func (r *Resolver) Resolve(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			rv, err := r.Resolve(e)
			if err != nil {
				return nil, err
			}
			out = append(out, rv)
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			rv, err := r.Resolve(e)
			if err != nil {
				return nil, err
			}
			out[k] = rv
		}
		return out, nil
	default:
		return v, nil
	}
}

// String resolves v and requires a string (numbers and booleans are
// formatted as CloudFormation passes them to environment variables).
func (r *Resolver) String(v any) (string, error) {
	rv, err := r.Resolve(v)
	if err != nil {
		return "", err
	}
	switch x := rv.(type) {
	case string:
		return x, nil
	case float64, bool, int:
		return fmt.Sprint(x), nil
	default:
		return "", fmt.Errorf("cfntemplate: %v resolves to %T, not a string", v, rv)
	}
}

// Strings resolves v (a string or a list) to a list of strings.
func (r *Resolver) Strings(v any) ([]string, error) {
	rv, err := r.Resolve(v)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list(rv) {
		s, err := r.String(e)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Resolver) ref(id string) (any, error) {
	if v, ok := r.Refs[id]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("cfntemplate: Ref %q: no value supplied", id)
}

func (r *Resolver) getAtt(id, attr string) (any, error) {
	if v, ok := r.Attrs[id+"."+attr]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("cfntemplate: Fn::GetAtt %s.%s: no value supplied", id, attr)
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (r *Resolver) intrinsic(fn string, arg any) (any, error) {
	wrap := func(err error) error { return fmt.Errorf("%s: %w", fn, err) }
	switch fn {
	case "Ref":
		id, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("cfntemplate: Ref takes a logical id, not %v", arg)
		}
		return r.ref(id)
	case "Fn::GetAtt":
		var id, attr string
		switch a := arg.(type) {
		case string:
			id, attr, _ = strings.Cut(a, ".")
		case []any:
			if len(a) == 2 {
				id = str(a[0])
				s, err := r.String(a[1])
				if err != nil {
					return nil, wrap(err)
				}
				attr = s
			}
		}
		if id == "" || attr == "" {
			return nil, fmt.Errorf("cfntemplate: Fn::GetAtt takes [id, attribute], not %v", arg)
		}
		return r.getAtt(id, attr)
	case "Fn::Join":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("cfntemplate: Fn::Join takes [delimiter, list], not %v", arg)
		}
		parts, err := r.Strings(a[1])
		if err != nil {
			return nil, wrap(err)
		}
		return strings.Join(parts, str(a[0])), nil
	case "Fn::Select":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("cfntemplate: Fn::Select takes [index, list], not %v", arg)
		}
		idx, err := r.String(a[0])
		if err != nil {
			return nil, wrap(err)
		}
		items, err := r.Resolve(a[1])
		if err != nil {
			return nil, wrap(err)
		}
		l := list(items)
		var i int
		if _, err := fmt.Sscan(idx, &i); err != nil || i < 0 || i >= len(l) {
			return nil, fmt.Errorf("cfntemplate: Fn::Select index %s out of range of %d items", idx, len(l))
		}
		return l[i], nil
	case "Fn::Split":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("cfntemplate: Fn::Split takes [delimiter, string], not %v", arg)
		}
		s, err := r.String(a[1])
		if err != nil {
			return nil, wrap(err)
		}
		var out []any
		for _, p := range strings.Split(s, str(a[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Sub":
		var tmpl string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			tmpl = a
		case []any:
			if len(a) != 2 {
				return nil, fmt.Errorf("cfntemplate: Fn::Sub takes a string or [string, map], not %v", arg)
			}
			tmpl = str(a[0])
			m, _ := a[1].(map[string]any)
			for k, v := range m {
				vars[k] = v
			}
		default:
			return nil, fmt.Errorf("cfntemplate: Fn::Sub takes a string or [string, map], not %v", arg)
		}
		var firstErr error
		out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
			name := m[2 : len(m)-1]
			var v any
			var err error
			if def, ok := vars[name]; ok {
				v, err = r.String(def)
			} else if id, attr, ok := strings.Cut(name, "."); ok {
				v, err = r.getAtt(id, attr)
			} else {
				v, err = r.ref(name)
			}
			if err == nil {
				v, err = r.String(v)
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return m
			}
			return v.(string)
		})
		if firstErr != nil {
			return nil, wrap(firstErr)
		}
		return strings.ReplaceAll(out, "${!", "${"), nil
	default:
		return nil, fmt.Errorf("cfntemplate: intrinsic %s is not supported", fn)
	}
}
