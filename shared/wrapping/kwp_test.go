package wrapping

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyWrapPadRFC5649Vectors checks the two test vectors of RFC 5649 section 6.
func TestKeyWrapPadRFC5649Vectors(t *testing.T) {
	kek := "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
	cases := []struct{ name, key, wrapped string }{
		{"20 octets", "c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"7 octets", "466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KeyWrapPad(mustHex(t, kek), mustHex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.wrapped {
				t.Fatalf("wrap = %x, want %s", got, tc.wrapped)
			}
			back, err := KeyUnwrapPad(mustHex(t, kek), got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, mustHex(t, tc.key)) {
				t.Fatalf("unwrap = %x, want %s", back, tc.key)
			}
		})
	}
}

func TestKeyUnwrapPadRejectsTampering(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	for _, n := range []int{1, 7, 8, 9, 16, 32, 121, 1217} {
		pt := make([]byte, n)
		rand.Read(pt)
		ct, err := KeyWrapPad(kek, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != 8*((n+7)/8)+8 {
			t.Fatalf("len %d: ciphertext %d bytes", n, len(ct))
		}
		for _, i := range []int{0, 3, 7, 8, len(ct) - 1} {
			bad := bytes.Clone(ct)
			bad[i] ^= 0x01
			if _, err := KeyUnwrapPad(kek, bad); !errors.Is(err, ErrKeyWrapIntegrity) {
				t.Fatalf("len %d, flipped byte %d: err = %v, want ErrKeyWrapIntegrity", n, i, err)
			}
		}
		other := bytes.Clone(kek)
		other[0] ^= 1
		if _, err := KeyUnwrapPad(other, ct); !errors.Is(err, ErrKeyWrapIntegrity) {
			t.Fatalf("len %d: wrong KEK err = %v", n, err)
		}
		if len(ct) > 16 {
			if _, err := KeyUnwrapPad(kek, ct[:len(ct)-8]); !errors.Is(err, ErrKeyWrapIntegrity) {
				t.Fatalf("len %d: truncated err = %v", n, err)
			}
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 8), make([]byte, 17), make([]byte, 23)} {
		if _, err := KeyUnwrapPad(kek, bad); !errors.Is(err, ErrKeyWrapIntegrity) {
			t.Fatalf("len %d: err = %v", len(bad), err)
		}
	}
	if _, err := KeyWrapPad(kek, nil); err == nil {
		t.Fatal("empty plaintext wrapped")
	}
	if _, err := KeyWrapPad(kek[:5], []byte("x")); err == nil {
		t.Fatal("5-byte KEK accepted")
	}
}

// TestKeyWrapPadMatchesOpenSSL wraps random plaintexts of many lengths with
// `openssl enc -id-aes256-wrap-pad` and checks byte-for-byte agreement both ways.
func TestKeyWrapPadMatchesOpenSSL(t *testing.T) {
	openssl := requireOpenSSL(t)
	dir := t.TempDir()
	for _, n := range []int{1, 5, 8, 9, 20, 32, 48, 64, 138, 241, 1217, 2374} {
		kek := make([]byte, 32)
		rand.Read(kek)
		pt := make([]byte, n)
		rand.Read(pt)
		in := filepath.Join(dir, "pt")
		if err := os.WriteFile(in, pt, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(openssl, "enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6", "-in", in).Output()
		if err != nil {
			t.Fatalf("openssl wrap %d bytes: %v", n, err)
		}
		ours, err := KeyWrapPad(kek, pt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, ours) {
			t.Fatalf("%d bytes: openssl %x, ours %x", n, out, ours)
		}
		ctFile := filepath.Join(dir, "ct")
		if err := os.WriteFile(ctFile, ours, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := exec.Command(openssl, "enc", "-d", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6", "-in", ctFile).Output()
		if err != nil {
			t.Fatalf("openssl unwrap %d bytes: %v", n, err)
		}
		if !bytes.Equal(back, pt) {
			t.Fatalf("%d bytes: openssl unwrapped %x, want %x", n, back, pt)
		}
	}
}

func requireOpenSSL(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found on PATH (install it: make deps): %v", err)
	}
	return p
}

func FuzzKeyUnwrapPad(f *testing.F) {
	f.Add(mustHex(f, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"), mustHex(f, "afbeb0f07dfbf5419200f2ccb50bb24f"))
	f.Add(mustHex(f, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"), mustHex(f, "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"))
	f.Add(make([]byte, 32), make([]byte, 24))
	f.Fuzz(func(t *testing.T, kek, ct []byte) {
		pt, err := KeyUnwrapPad(kek, ct)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		again, err := KeyWrapPad(kek, pt)
		if err != nil {
			t.Fatalf("re-wrap of unwrapped plaintext failed: %v", err)
		}
		if !bytes.Equal(again, ct) {
			t.Fatalf("unwrap/wrap not inverse: %x vs %x", again, ct)
		}
	})
}
