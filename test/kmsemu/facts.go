package kmsemu

import (
	"maps"
	"strconv"
	"strings"
)

// KeyFacts is what IAM knows of a key when it authorizes a call on it: its
// ARN, key policy, tags and the properties KMS condition keys test.
// Test-only, like ImportedMaterials: test/iamsim reads it without calling
// (and being paced by) the emulator's API.
type KeyFacts struct {
	ARN         string
	Policy      string
	Tags        map[string]string
	Origin      string
	KeySpec     string
	KeyUsage    string
	MultiRegion string // "true" or "false", as kms:MultiRegion compares
}

// KeyFacts resolves id (key id, key ARN, alias name or alias ARN) to its key.
// kms:MultiRegion is "true" for a multi-Region primary or replica.
func (s *Server) KeyFacts(id string) (KeyFacts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s
	// A key or alias ARN names its region (several regions are served,
	// regions.go); a bare id or alias name is the server's own region.
	if parts := strings.SplitN(id, ":", 6); len(parts) == 6 && parts[0] == "arn" && parts[3] != s.opts.Region {
		var ok bool
		if rs, ok = s.root.regions[parts[3]]; !ok {
			return KeyFacts{}, false
		}
	}
	k, kerr := rs.resolveKey(id, true)
	if kerr != nil || k == nil {
		return KeyFacts{}, false
	}
	return KeyFacts{ARN: k.arn, Policy: k.policy, Tags: maps.Clone(k.tags), Origin: k.origin,
		KeySpec: string(k.spec), KeyUsage: string(k.usage), MultiRegion: strconv.FormatBool(k.mr != nil)}, true
}
