//go:build cgo

package hsm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// token is one test token shared by the whole package run: keys are
// expensive (RSA-4096), so each spec is generated once per token and reused.
type token struct {
	name string
	cfg  hsm.Config
	h    *hsm.HSM

	mu   sync.Mutex
	keys map[string]string // spec+variant -> label
}

var (
	tokens  []*token
	labelN  atomic.Uint64
	wrapMu  sync.Mutex
	wrapKey = map[keyspec.WrappingKeySpec]*rsa.PrivateKey{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	if os.Getenv(poolChildEnv) != "" {
		return poolChild(ctx) // a second agent process (genlock_test.go)
	}
	dir, err := os.MkdirTemp("", "keyferry-hsm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	soft, err := hsmtest.NewSoftHSMToken(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "softhsm fixture:", err)
		return 1
	}
	ock, release, err := hsmtest.NewOpenCryptokiToken(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opencryptoki fixture:", err)
		return 1
	}
	defer release()
	nss, err := hsmtest.NewNSSToken(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nss fixture:", err)
		return 1
	}
	for _, t := range []*token{{name: "softhsm2", cfg: soft}, {name: "opencryptoki", cfg: ock}, {name: "nss", cfg: nss}} {
		t.cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) // keep test and benchmark output readable
		h, err := hsm.Open(ctx, t.cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "open %s: %v\n", t.name, err)
			return 1
		}
		defer h.Close()
		t.h = h
		t.keys = map[string]string{}
		tokens = append(tokens, t)
	}
	return m.Run()
}

// newLabel returns a fresh label in the keyferry naming scheme.
func newLabel(t testing.TB, group string) string {
	t.Helper()
	l, err := hsm.Label(group, labelN.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// key returns the label of a key of spec on tok, generating it on first use.
func (tok *token) key(t testing.TB, spec keyspec.Spec, sensitive bool) string {
	t.Helper()
	variant := string(spec)
	var opts []hsm.GenerateOption
	if !sensitive {
		variant += "/nonsensitive"
		opts = append(opts, hsm.NonSensitiveForTest())
	}
	tok.mu.Lock()
	defer tok.mu.Unlock()
	if l, ok := tok.keys[variant]; ok {
		return l
	}
	l := newLabel(t, "test")
	if _, err := tok.h.Generate(context.Background(), l, spec, opts...); err != nil {
		t.Fatalf("%s: Generate %s: %v", tok.name, variant, err)
	}
	tok.keys[variant] = l
	return l
}

// kmsWrappingKey is a stand-in for the KMS wrapping key pair of a spec
// (generated once per run).
func kmsWrappingKey(t testing.TB, w keyspec.WrappingKeySpec) *rsa.PrivateKey {
	t.Helper()
	wrapMu.Lock()
	defer wrapMu.Unlock()
	if k, ok := wrapKey[w]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, w.Bits())
	if err != nil {
		t.Fatal(err)
	}
	wrapKey[w] = k
	return k
}

func forEachToken(t *testing.T, fn func(t *testing.T, tok *token)) {
	for _, tok := range tokens {
		t.Run(tok.name, func(t *testing.T) { fn(t, tok) })
	}
}
