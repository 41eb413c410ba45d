package kmsemu

import (
	"github.com/keyferry/keyferry/shared/keyspec"
)

// parseMaterial validates imported (or generated) bytes for a key spec with
// shared/keyspec.ParseMaterial (the one place the material rules live).
func parseMaterial(spec keyspec.Spec, raw []byte) (*parsedMaterial, error) {
	m, err := keyspec.ParseMaterial(spec, raw)
	if err != nil {
		return nil, err
	}
	return &parsedMaterial{Secret: m.Secret, Private: m.Private, PublicDER: m.PublicDER}, nil
}
