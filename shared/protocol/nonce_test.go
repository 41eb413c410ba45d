package protocol

import "testing"

func TestNewNonce(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		n, err := NewNonce()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != NonceBytes || checkNonce("nonce", n) != nil {
			t.Fatalf("nonce %x", n)
		}
		if seen[n.String()] {
			t.Fatalf("nonce repeated: %s", n)
		}
		seen[n.String()] = true
	}
}

func TestEqualNonces(t *testing.T) {
	a := testNonce(1)
	tests := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"same", a, append([]byte(nil), a...), true},
		{"last byte differs", a, append(append([]byte(nil), a[:len(a)-1]...), a[len(a)-1]^1), false},
		{"prefix", a, a[:16], false},
		{"both empty", nil, []byte{}, false},
		{"one empty", a, nil, false},
	}
	for _, tc := range tests {
		if got := EqualNonces(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: EqualNonces = %v", tc.name, got)
		}
		if got := Nonce(tc.a).Equal(tc.b); got != tc.want {
			t.Errorf("%s: Nonce.Equal = %v", tc.name, got)
		}
	}
}
