package hsmlabel

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestLabelRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		group string
		gen   uint64
		want  string
	}{
		{"payments", 0, "kf/payments/0"},
		{"payments", 7, "kf/payments/7"},
		{"a.b_c-9", 18446744073709551615, "kf/a.b_c-9/18446744073709551615"},
	} {
		l, err := Label(tc.group, tc.gen)
		if err != nil || l != tc.want {
			t.Fatalf("Label(%q,%d) = %q, %v; want %q", tc.group, tc.gen, l, err, tc.want)
		}
		g, n, err := Parse(l)
		if err != nil || g != tc.group || n != tc.gen {
			t.Fatalf("Parse(%q) = %q, %d, %v", l, g, n, err)
		}
	}
}

func TestLabelRejects(t *testing.T) {
	for _, g := range []string{"", "a/b", "sp ace", "ü", string(make([]byte, 65))} {
		if _, err := Label(g, 1); !errors.Is(err, ErrBad) {
			t.Errorf("Label(%q): %v, want ErrBad", g, err)
		}
	}
	for _, l := range []string{"", "kf/", "kf/g", "kf/g/", "kf/g/01", "kf/g/-1", "kf/g/+1", "kf/g/1/2", "xx/g/1", "kf//1", "kf/g/18446744073709551616"} {
		if _, _, err := Parse(l); !errors.Is(err, ErrBad) {
			t.Errorf("Parse(%q): %v, want ErrBad", l, err)
		}
	}
}

// TestKeyIDStable pins the CKA_ID derivation: keys already created on
// tokens carry it, so it must never change.
func TestKeyIDStable(t *testing.T) {
	for _, tc := range []struct{ label, want string }{
		// sha256("kf/payments/1")[:16], computed with `printf kf/payments/1 | sha256sum`.
		{"kf/payments/1", "bae0bddd6d49cfcc7aecd78783e1fc2e"},
	} {
		id := KeyID(tc.label)
		if len(id) != 16 || !bytes.Equal(id, KeyID(tc.label)) {
			t.Fatalf("KeyID(%q) = %x: not 16 stable bytes", tc.label, id)
		}
		if tc.want != "" && hex.EncodeToString(id) != tc.want {
			t.Fatalf("KeyID(%q) = %x, want %s", tc.label, id, tc.want)
		}
	}
	if bytes.Equal(KeyID("kf/g/1"), KeyID("kf/g/2")) {
		t.Fatal("KeyID collides for different labels")
	}
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, label string) {
		g, n, err := Parse(label)
		if err != nil {
			if !errors.Is(err, ErrBad) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrBad", label, err)
			}
			return
		}
		back, err := Label(g, n)
		if err != nil || back != label {
			t.Fatalf("Parse(%q) = %q,%d but Label gives %q, %v", label, g, n, back, err)
		}
	})
}
