package groups

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds how many YAML nodes one decode visits, so that aliases
// cannot expand a small document into an enormous one.
const maxNodes = 100000

// decoder turns a yaml.Node tree into Go values, field by field, so that every
// problem (unknown key, duplicate key, wrong type) is reported with its path
// and decoding goes on after it.
type decoder struct {
	problems *problems
	// quiet holds nodes whose problems were already reported elsewhere
	// (nodes of the defaults section merged into groups).
	quiet  map[*yaml.Node]bool
	visits int
	// present records, per decoded struct path, which keys were present.
	present map[string]map[string]bool
}

func newDecoder(p *problems) *decoder {
	return &decoder{problems: p, quiet: map[*yaml.Node]bool{}, present: map[string]map[string]bool{}}
}

func (d *decoder) addf(n *yaml.Node, path, format string, args ...any) {
	if n != nil && d.quiet[n] {
		return
	}
	d.problems.addf(path, format, args...)
}

// resolve follows aliases; it returns nil when the budget is exhausted.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for depth := 0; n != nil && n.Kind == yaml.AliasNode; depth++ {
		if depth > 100 {
			d.addf(nil, path, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	d.visits++
	if d.visits == maxNodes+1 {
		d.addf(nil, "", "document too large (more than %d nodes after expanding aliases, at %s)", maxNodes, path)
	}
	if d.visits > maxNodes {
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// isUnset reports whether a value leaves a field unset: null or empty string.
func isUnset(n *yaml.Node) bool {
	if n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return isNull(n) || (n.Kind == yaml.ScalarNode && n.Value == "" && (n.Tag == "!!str" || n.Tag == ""))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:-]*$`)

func joinKey(path, key string) string {
	if identRe.MatchString(key) {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func joinIndex(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// mapPairs returns the key/value pairs of a mapping node, reporting non-scalar,
// merge ("<<") and duplicate keys. Later duplicates are dropped.
func (d *decoder) mapPairs(n *yaml.Node, path string) (keys []string, vals []*yaml.Node) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := d.resolve(n.Content[i], path)
		if kn == nil {
			return keys, vals
		}
		if kn.Kind != yaml.ScalarNode {
			d.addf(kn, path, "mapping key must be a string, got %s", kindName(kn))
			continue
		}
		if kn.Tag == "!!merge" || kn.Value == "<<" {
			d.addf(kn, joinKey(path, kn.Value), "YAML merge keys are not supported; use defaults:")
			continue
		}
		if seen[kn.Value] {
			d.addf(kn, joinKey(path, kn.Value), "duplicate key")
			continue
		}
		seen[kn.Value] = true
		keys = append(keys, kn.Value)
		vals = append(vals, n.Content[i+1])
	}
	return keys, vals
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode fills v (addressable) from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = d.resolve(n, path)
	if n == nil || isNull(n) {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		d.leaf(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			d.leaf(n, v, path)
			return
		}
		d.sequence(n, v, path)
	default:
		d.leaf(n, v, path)
	}
}

type fieldInfo struct {
	index int
	name  string
}

func yamlFields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = fieldInfo{index: i, name: name}
	}
	return out
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	keys, vals := d.mapPairs(n, path)
	present := map[string]bool{}
	for i, k := range keys {
		f, ok := fields[k]
		if !ok {
			msg := "unknown field"
			if s := suggest(k, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.addf(vals[i], joinKey(path, k), "%s", msg)
			continue
		}
		if !isUnset(vals[i]) {
			present[k] = true
		}
		d.decode(vals[i], v.Field(f.index), joinKey(path, k))
	}
	d.present[path] = present
}

func suggest(k string, fields map[string]fieldInfo) string {
	norm := func(s string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestD := "", 3
	for name := range fields {
		if norm(name) == norm(k) {
			return name
		}
		if d := editDistance(name, k); d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, path, "want a mapping, got %s", kindName(n))
		return
	}
	keys, vals := d.mapPairs(n, path)
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(keys)))
	}
	for i, k := range keys {
		ev := reflect.New(v.Type().Elem()).Elem()
		d.decode(vals[i], ev, joinKey(path, k))
		v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.addf(n, path, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(c, s.Index(i), joinIndex(path, i))
	}
	v.Set(s)
}

var lineRe = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\s*)?(line \d+: )?`)

func (d *decoder) leaf(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		want := "a value"
		switch v.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Int, reflect.Int64:
			want = "an integer"
		case reflect.Float64:
			want = "a number"
		}
		if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
			// Let the type word its own message.
			if err := n.Decode(v.Addr().Interface()); err != nil {
				d.addf(n, path, "%s", cleanErr(err))
			}
			return
		}
		d.addf(n, path, "want %s, got %s", want, kindName(n))
		return
	}
	if v.Kind() == reflect.String && n.Tag != "!!binary" {
		// Any scalar reads as its text (yaml.v3 does the same).
		v.SetString(n.Value)
		return
	}
	tmp := reflect.New(v.Type())
	if err := n.Decode(tmp.Interface()); err != nil {
		d.addf(n, path, "%s", cleanErr(err))
		return
	}
	v.Set(tmp.Elem())
}

func cleanErr(err error) string {
	s := err.Error()
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		s = te.Errors[0]
	}
	s = lineRe.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "!!str", "string")
	s = strings.ReplaceAll(s, "!!int", "integer")
	s = strings.ReplaceAll(s, "!!float", "number")
	s = strings.ReplaceAll(s, "!!bool", "boolean")
	return s
}

// mergeNodes returns group with every key of defaults it leaves unset (absent,
// null or empty string) filled in; mappings present in both are merged one
// level deeper (wrapping, tags). Lists are replaced, never merged. inherited
// receives the top-level keys that came (wholly or partly) from defaults.
func (d *decoder) mergeNodes(defaults, group *yaml.Node, path string, inherited map[string]bool) *yaml.Node {
	if defaults == nil {
		return group
	}
	if group == nil {
		return defaults
	}
	dn := derefAlias(defaults)
	gn := derefAlias(group)
	if dn.Kind != yaml.MappingNode || gn.Kind != yaml.MappingNode {
		return group
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: gn.Line, Column: gn.Column}
	gkeys := map[string]int{}
	for i := 0; i+1 < len(gn.Content); i += 2 {
		k := derefAlias(gn.Content[i])
		if k.Kind == yaml.ScalarNode {
			if _, dup := gkeys[k.Value]; !dup {
				gkeys[k.Value] = i
			}
		}
	}
	out.Content = append(out.Content, gn.Content...)
	done := map[string]bool{}
	for i := 0; i+1 < len(dn.Content); i += 2 {
		k := derefAlias(dn.Content[i])
		if k.Kind != yaml.ScalarNode || done[k.Value] || k.Value == "<<" || (inherited != nil && k.Value == "name") {
			continue
		}
		done[k.Value] = true
		dv := dn.Content[i+1]
		gi, ok := gkeys[k.Value]
		switch {
		case !ok:
			out.Content = append(out.Content, dn.Content[i], dv)
			if inherited != nil {
				inherited[k.Value] = true
			}
		case isUnset(gn.Content[gi+1]):
			out.Content[gi+1] = dv
			if inherited != nil {
				inherited[k.Value] = true
			}
		case derefAlias(gn.Content[gi+1]).Kind == yaml.MappingNode && derefAlias(dv).Kind == yaml.MappingNode:
			out.Content[gi+1] = d.mergeNodes(dv, gn.Content[gi+1], joinKey(path, k.Value), nil)
		}
	}
	return out
}

func derefAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null"}
	}
	return n
}

// markQuiet marks n and everything under it as already reported.
func (d *decoder) markQuiet(n *yaml.Node) {
	budget := maxNodes
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || budget <= 0 || d.quiet[n] {
			return
		}
		budget--
		d.quiet[n] = true
		if n.Kind == yaml.AliasNode {
			walk(n.Alias)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
}
