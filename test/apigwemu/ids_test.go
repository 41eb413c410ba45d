package apigwemu

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestIDShapes(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		id := newID()
		if len(id) != 16 || !strings.HasSuffix(id, "=") || strings.ContainsAny(id, "/+") {
			t.Fatalf("id %q not shaped like an API Gateway id", id)
		}
		if raw, err := base64.StdEncoding.DecodeString(id); err != nil || len(raw) != 11 {
			t.Fatalf("id %q: %v, %d bytes", id, err, len(raw))
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	tests := []struct {
		name string
		got  string
		re   string
	}{
		{"api id", randomAPIID(), `^[a-z0-9]{10}$`},
		{"trace id", newTraceID(1705751708), `^Root=1-65abb49c-[0-9a-f]{24}$`},
	}
	for _, tc := range tests {
		if !regexp.MustCompile(tc.re).MatchString(tc.got) {
			t.Errorf("%s: %q does not match %s", tc.name, tc.got, tc.re)
		}
	}
}
