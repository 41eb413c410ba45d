package apigwemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// newID returns an identifier shaped like API Gateway's connection, request
// and message ids: 11 random bytes in standard base64 ("L0SM9cOFvHcCIhw=").
// Ids containing '/' or '+' are redrawn so they are path- and query-safe
// (the real service's ids are not documented to avoid them; keyferry code
// must still path-escape them, as the SDK does).
func newID() string {
	b := make([]byte, 11)
	for {
		_, _ = rand.Read(b)
		s := base64.StdEncoding.EncodeToString(b)
		if !strings.ContainsAny(s, "/+") {
			return s
		}
	}
}

// randomAPIID returns a 10-character lowercase alphanumeric API id.
func randomAPIID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newTraceID returns an X-Amzn-Trace-Id root, "Root=1-<8 hex>-<24 hex>".
func newTraceID(epochSeconds int64) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	var ts [4]byte
	ts[0], ts[1], ts[2], ts[3] = byte(epochSeconds>>24), byte(epochSeconds>>16), byte(epochSeconds>>8), byte(epochSeconds)
	return "Root=1-" + hex.EncodeToString(ts[:]) + "-" + hex.EncodeToString(b)
}
