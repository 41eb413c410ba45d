package soak

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestScanForMaterial(t *testing.T) {
	mat := []byte("0123456789abcdef0123456789ABCDEF")
	tests := []struct {
		name string
		hay  []byte
		want bool
	}{
		{"raw", append([]byte("x"), mat...), true},
		{"hex", []byte(`{"k":"` + hex.EncodeToString(mat) + `"}`), true},
		{"base64", []byte(base64.StdEncoding.EncodeToString(mat)), true},
		{"window", mat[5:21], true},
		{"hex window", []byte(hex.EncodeToString(mat[10:26])), true},
		{"15 bytes", mat[:15], false},
		{"unrelated", []byte("nothing to see here, nothing at all"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaks := ScanForMaterial(map[string][]byte{"log": tt.hay}, map[string][]byte{"k": mat})
			if got := len(leaks) > 0; got != tt.want {
				t.Fatalf("leak found = %v, want %v (%+v)", got, tt.want, leaks)
			}
		})
	}
}
