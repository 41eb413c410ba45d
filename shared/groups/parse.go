package groups

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Parse decodes and validates a configuration file's bytes (YAML or JSON).
// Policy files are only checked to be named, not read; use Load for that.
// The error is a *ValidationError listing every problem.
func Parse(data []byte) (*Config, error) {
	return parse(data, nil)
}

// Load reads, decodes and validates the configuration file at path, and reads
// each group's policy_file relative to the file's directory (it must exist
// and hold a JSON key policy). Validation problems come back as one
// *ValidationError; failing to read the file itself is a plain error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("groups: read config: %w", err)
	}
	return parse(data, &policyReader{dir: filepath.Dir(path), cache: map[string]policyResult{}})
}

var topFields = yamlFields(reflect.TypeFor[Config]())

func parse(data []byte, policies *policyReader) (*Config, error) {
	p := &problems{}
	cfg := &Config{}
	root := readDocument(data, p)
	if root == nil {
		return nil, p.err()
	}
	d := newDecoder(p)
	root = d.resolve(root, "")
	if root == nil {
		return nil, p.err()
	}
	if root.Kind != yaml.MappingNode {
		p.addf("", "the configuration must be a mapping with version, hsm_pools, control_plane, defaults and groups; got %s", kindName(root))
		return nil, p.err()
	}
	keys, vals := d.mapPairs(root, "")
	var defaultsNode, groupsNode *yaml.Node
	cv := reflect.ValueOf(cfg).Elem()
	for i, k := range keys {
		f, ok := topFields[k]
		if !ok {
			msg := "unknown field"
			if s := suggest(k, topFields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.addf(k, "%s", msg)
			continue
		}
		switch k {
		case "groups":
			groupsNode = vals[i]
		case "defaults":
			defaultsNode = vals[i]
			d.decode(vals[i], cv.Field(f.index), k)
			d.markQuiet(vals[i])
		default:
			d.decode(vals[i], cv.Field(f.index), k)
		}
	}
	if defaultsNode != nil {
		if dn := derefAlias(defaultsNode); dn.Kind != yaml.MappingNode {
			defaultsNode = nil
		}
	}
	inherited := decodeGroups(d, cfg, defaultsNode, groupsNode)
	validate(cfg, p, d, inherited, policies)
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readDocument parses data into a single YAML document's root node.
func readDocument(data []byte, p *problems) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf("", "empty document")
		} else {
			p.addf("", "not valid YAML or JSON: %s", cleanYAMLSyntax(err))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.addf("", "the file must hold exactly one YAML document")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.addf("", "empty document")
		return nil
	}
	return doc.Content[0]
}

func cleanYAMLSyntax(err error) string {
	s := err.Error()
	if len(s) > 6 && s[:6] == "yaml: " {
		s = s[6:]
	}
	return s
}

// decodeGroups decodes each group with the defaults merged in; it returns,
// per group, the top-level keys inherited from defaults.
func decodeGroups(d *decoder, cfg *Config, defaultsNode, groupsNode *yaml.Node) []map[string]bool {
	if groupsNode == nil {
		return nil
	}
	gn := d.resolve(groupsNode, "groups")
	if gn == nil || isNull(gn) {
		return nil
	}
	if gn.Kind != yaml.SequenceNode {
		d.addf(gn, "groups", "want a list of groups, got %s", kindName(gn))
		return nil
	}
	cfg.Groups = make([]Group, len(gn.Content))
	inherited := make([]map[string]bool, len(gn.Content))
	for i, n := range gn.Content {
		path := joinIndex("groups", i)
		inherited[i] = map[string]bool{}
		merged := d.mergeNodes(defaultsNode, n, path, inherited[i])
		d.decode(merged, reflect.ValueOf(&cfg.Groups[i]).Elem(), path)
	}
	return inherited
}
