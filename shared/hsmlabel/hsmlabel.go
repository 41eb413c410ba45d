// Package hsmlabel is keyferry's HSM key naming scheme, shared by the agent
// (which creates and finds keys by label) and the control plane (which names
// the key a wrap_request is for): "kf/<group>/<generation>", plus the
// stable CKA_ID derived from a label. Pure Go, no cgo.
package hsmlabel

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Prefix starts every key label keyferry generates.
const Prefix = "kf/"

// ErrBad is wrapped by Label and Parse errors.
var ErrBad = errors.New("hsm: bad key label")

// MaxGroupLen keeps labels well inside what tokens store (SoftHSM: any
// length; many HSMs: 32..128 bytes).
const MaxGroupLen = 64

// Label names the HSM key of one generation of a key group:
// "kf/<group>/<generation>". Groups are 1..64 characters of [A-Za-z0-9._-].
func Label(group string, generation uint64) (string, error) {
	if err := CheckGroup(group); err != nil {
		return "", err
	}
	return Prefix + group + "/" + strconv.FormatUint(generation, 10), nil
}

// Parse reverses Label.
func Parse(label string) (group string, generation uint64, err error) {
	rest, ok := strings.CutPrefix(label, Prefix)
	if !ok {
		return "", 0, fmt.Errorf("%w: %q does not start with %q", ErrBad, label, Prefix)
	}
	group, genStr, ok := strings.Cut(rest, "/")
	if !ok {
		return "", 0, fmt.Errorf("%w: %q has no generation", ErrBad, label)
	}
	if err := CheckGroup(group); err != nil {
		return "", 0, err
	}
	if genStr == "" || (len(genStr) > 1 && genStr[0] == '0') {
		return "", 0, fmt.Errorf("%w: %q: generation must be a canonical decimal number", ErrBad, label)
	}
	generation, err = strconv.ParseUint(genStr, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: generation: %v", ErrBad, label, err)
	}
	return group, generation, nil
}

// CheckGroup reports whether group can appear in a label.
func CheckGroup(group string) error {
	if group == "" || len(group) > MaxGroupLen {
		return fmt.Errorf("%w: group must be 1..%d characters, got %d", ErrBad, MaxGroupLen, len(group))
	}
	for _, c := range group {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: group %q: character %q not in [A-Za-z0-9._-]", ErrBad, group, c)
		}
	}
	return nil
}

// KeyID is the stable CKA_ID of a label: the first 16 bytes of SHA-256(label).
func KeyID(label string) []byte {
	sum := sha256.Sum256([]byte(label))
	return sum[:16]
}
