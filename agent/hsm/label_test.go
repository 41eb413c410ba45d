package hsm

import (
	"errors"
	"os"
	"testing"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func TestLabelRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		group string
		gen   uint64
		want  string
	}{
		{"payments", 0, "kf/payments/0"},
		{"a.b_c-9", 18446744073709551615, "kf/a.b_c-9/18446744073709551615"},
	} {
		l, err := Label(tc.group, tc.gen)
		if err != nil || l != tc.want {
			t.Fatalf("Label(%q,%d) = %q, %v", tc.group, tc.gen, l, err)
		}
		g, n, err := ParseLabel(l)
		if err != nil || g != tc.group || n != tc.gen {
			t.Fatalf("ParseLabel(%q) = %q, %d, %v", l, g, n, err)
		}
		if id := KeyID(l); len(id) != 16 || string(id) != string(KeyID(l)) {
			t.Fatalf("KeyID not 16 stable bytes")
		}
	}
}

func TestLabelRejects(t *testing.T) {
	for _, g := range []string{"", "a/b", "sp ace", "ü", string(make([]byte, 65))} {
		if _, err := Label(g, 1); !errors.Is(err, ErrBadLabel) {
			t.Errorf("Label(%q): %v, want ErrBadLabel", g, err)
		}
	}
	for _, l := range []string{"", "kf/", "kf/g", "kf/g/", "kf/g/01", "kf/g/-1", "kf/g/1/2", "xx/g/1", "kf//1", "kf/g/18446744073709551616"} {
		if _, _, err := ParseLabel(l); !errors.Is(err, ErrBadLabel) {
			t.Errorf("ParseLabel(%q): %v, want ErrBadLabel", l, err)
		}
	}
}
