package hsm

import "github.com/keyferry/keyferry/shared/hsmlabel"

// The label scheme lives in shared/hsmlabel (the control plane names keys
// with it too); these are the agent's names for it.

// LabelPrefix starts every key label keyferry generates.
const LabelPrefix = hsmlabel.Prefix

// ErrBadLabel is wrapped by Label and ParseLabel errors (it is hsmlabel.ErrBad).
var ErrBadLabel = hsmlabel.ErrBad

// Label names the HSM key of one generation of a key group (hsmlabel.Label).
func Label(group string, generation uint64) (string, error) {
	return hsmlabel.Label(group, generation)
}

// ParseLabel reverses Label (hsmlabel.Parse).
func ParseLabel(label string) (group string, generation uint64, err error) {
	return hsmlabel.Parse(label)
}

// KeyID is the stable CKA_ID of a label (hsmlabel.KeyID).
func KeyID(label string) []byte { return hsmlabel.KeyID(label) }
