package protocol

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// Nonce sizes.
const (
	// NonceBytes is the size NewNonce generates.
	NonceBytes = 32
	// MinNonceBytes and MaxNonceBytes bound a nonce on the wire.
	MinNonceBytes = 16
	MaxNonceBytes = 64
)

// Nonce is a random per-request value (base64 in JSON). The control plane
// puts a fresh one in every WrapRequest; the agent keeps the nonces of
// unexpired requests to refuse replays and echoes the nonce in its
// WrapResult. Replay detection itself is the agent's job.
type Nonce []byte

// NewNonce returns NonceBytes bytes from crypto/rand.
func NewNonce() (Nonce, error) {
	n := make(Nonce, NonceBytes)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("protocol: nonce: %w", err)
	}
	return n, nil
}

// Equal compares two nonces in constant time (for a given length).
func (n Nonce) Equal(o Nonce) bool { return EqualNonces(n, o) }

// String returns the standard base64 form, suitable as a replay-cache key.
func (n Nonce) String() string { return base64.StdEncoding.EncodeToString(n) }

// EqualNonces compares a and b in constant time; it is false for two empty
// values, so an absent nonce never matches.
func EqualNonces(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare(a, b) == 1
}

func checkNonce(field string, n Nonce) error {
	switch {
	case len(n) == 0:
		return missing(field)
	case len(n) < MinNonceBytes:
		return invalid(field, fmt.Sprintf("%d bytes, want at least %d random bytes", len(n), MinNonceBytes))
	case len(n) > MaxNonceBytes:
		return invalid(field, fmt.Sprintf("%d bytes, want at most %d", len(n), MaxNonceBytes))
	}
	return nil
}
