package kmsemu

import "time"

// ImportedMaterial is one imported key material of a key as the emulator
// holds it: the plaintext bytes ImportKeyMaterial unwrapped. It exists so
// test suites (test/soak, test/security) can obtain the plaintext of test
// keys legitimately and prove it never appears on the wire or in a log, and
// compare it with the HSM twin. The emulator is test-only; this accessor
// has no counterpart in AWS.
type ImportedMaterial struct {
	KeyID         string
	KeyARN        string
	KeyMaterialID string
	State         string // CURRENT, NON_CURRENT, PENDING_ROTATION
	Material      []byte // a copy
}

// ImportedMaterials returns every imported material of every key (regions
// as Regions lists them, keys in creation order, materials in association
// order). Generated (AWS_KMS origin) materials are not included.
func (s *Server) ImportedMaterials() []ImportedMaterial {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ImportedMaterial
	for _, rs := range s.sortedRegions() {
		out = append(out, rs.importedMaterials()...)
	}
	return out
}

func (s *Server) importedMaterials() []ImportedMaterial {
	var out []ImportedMaterial
	for _, id := range s.order {
		k := s.keys[id]
		if k == nil {
			continue
		}
		for _, m := range k.materials {
			if !m.imported || len(m.raw) == 0 {
				continue
			}
			out = append(out, ImportedMaterial{
				KeyID: k.id, KeyARN: k.arn, KeyMaterialID: m.id, State: m.state,
				Material: append([]byte(nil), m.raw...),
			})
		}
	}
	return out
}

// ExpireImportTokens makes every import token issued so far expired, as if
// its 24 hours had passed, without moving the emulator's clock: an import
// with one is ExpiredImportTokenException. It returns how many tokens were
// still valid. Test-only, like ImportedMaterials (the soak's "import
// parameters expire between wrap and import" fault); AWS has no counterpart.
func (s *Server) ExpireImportTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	n := 0
	for _, rs := range s.sortedRegions() {
		for _, p := range rs.tokens {
			if p.validTo.After(now) {
				p.validTo = now.Add(-time.Second)
				n++
			}
		}
	}
	return n
}
