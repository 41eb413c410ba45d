package hsm

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LabelPrefix starts every key label keyferry generates.
const LabelPrefix = "kf/"

// ErrBadLabel is wrapped by Label and ParseLabel errors.
var ErrBadLabel = errors.New("hsm: bad key label")

// maxGroupLen keeps labels well inside what tokens store (SoftHSM: any
// length; many HSMs: 32..128 bytes).
const maxGroupLen = 64

// Label names the HSM key of one generation of a key group:
// "kf/<group>/<generation>". Groups are 1..64 characters of [A-Za-z0-9._-].
func Label(group string, generation uint64) (string, error) {
	if err := checkGroup(group); err != nil {
		return "", err
	}
	return LabelPrefix + group + "/" + strconv.FormatUint(generation, 10), nil
}

// ParseLabel reverses Label.
func ParseLabel(label string) (group string, generation uint64, err error) {
	rest, ok := strings.CutPrefix(label, LabelPrefix)
	if !ok {
		return "", 0, fmt.Errorf("%w: %q does not start with %q", ErrBadLabel, label, LabelPrefix)
	}
	group, genStr, ok := strings.Cut(rest, "/")
	if !ok {
		return "", 0, fmt.Errorf("%w: %q has no generation", ErrBadLabel, label)
	}
	if err := checkGroup(group); err != nil {
		return "", 0, err
	}
	if genStr == "" || (len(genStr) > 1 && genStr[0] == '0') {
		return "", 0, fmt.Errorf("%w: %q: generation must be a canonical decimal number", ErrBadLabel, label)
	}
	generation, err = strconv.ParseUint(genStr, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %q: generation: %v", ErrBadLabel, label, err)
	}
	return group, generation, nil
}

func checkGroup(group string) error {
	if group == "" || len(group) > maxGroupLen {
		return fmt.Errorf("%w: group must be 1..%d characters, got %d", ErrBadLabel, maxGroupLen, len(group))
	}
	for _, c := range group {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: group %q: character %q not in [A-Za-z0-9._-]", ErrBadLabel, group, c)
		}
	}
	return nil
}

// KeyID is the stable CKA_ID of a label: the first 16 bytes of SHA-256(label).
func KeyID(label string) []byte {
	sum := sha256.Sum256([]byte(label))
	return sum[:16]
}
