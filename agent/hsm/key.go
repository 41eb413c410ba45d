package hsm

import "github.com/keyferry/keyferry/shared/keyspec"

// Key and GenerateOption appear in the daemon's interface to the HSM, so
// this file compiles without cgo.

// Key is a keyferry key on the token, named by its label.
type Key struct {
	Label string
	ID    []byte // CKA_ID = KeyID(Label)
	Spec  keyspec.Spec
}

// GenerateOption adjusts Generate.
type GenerateOption func(*genOptions)

type genOptions struct {
	// nonSensitive is reachable only from this package's tests
	// (export_test.go): it lets a test compare wrapped bytes directly.
	nonSensitive bool
	// generated, when set (tests only), is told the label of the new key.
	generated func(label string)
}
