package kmsemu

import (
	"maps"
	"strconv"
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
func (s *Server) KeyFacts(id string) (KeyFacts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, kerr := s.resolveKey(id, true)
	if kerr != nil || k == nil {
		return KeyFacts{}, false
	}
	return KeyFacts{ARN: k.arn, Policy: k.policy, Tags: maps.Clone(k.tags), Origin: k.origin,
		KeySpec: string(k.spec), KeyUsage: string(k.usage), MultiRegion: strconv.FormatBool(false)}, true
}
