//go:build cgo

package hsm_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// TestProbeAndWrapLeaveNoSessionObjects: the capability probe (throwaway
// key pairs, both halves) and every supported wrap (ephemeral AES key,
// imported KMS wrapping key) destroy every session object they create, so
// long-lived pooled sessions do not accumulate key objects. The probe runs
// on a fresh HSM so it is not served from the cache.
func TestProbeAndWrapLeaveNoSessionObjects(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		h, err := hsm.Open(ctx, tok.cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		count := func(stage string) int {
			t.Helper()
			n, err := h.CountSessionObjectsForTest(ctx)
			if err != nil {
				t.Fatalf("%s: %v", stage, err)
			}
			return n
		}
		before := count("before probe")
		caps, err := h.Capabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after := count("after probe"); after != before {
			t.Fatalf("probe left %d session objects behind", after-before)
		}
		wraps := 0
		for _, c := range caps {
			if len(c.Algorithms) == 0 {
				continue
			}
			label := tok.key(t, c.KeySpec, true)
			for _, alg := range c.Algorithms {
				w := c.WrappingKeySpecs[0]
				if keyspec.CheckWrapping(c.KeySpec, alg, w) != nil {
					continue
				}
				der, err := x509.MarshalPKIXPublicKey(&kmsWrappingKey(t, w).PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := h.Wrap(ctx, label, der, alg); err != nil {
					t.Fatalf("%s/%s: %v", c.KeySpec, alg, err)
				}
				wraps++
			}
		}
		if wraps == 0 {
			t.Fatal("no supported wrap to check")
		}
		if after := count("after wraps"); after != before {
			t.Fatalf("%d wraps left %d session objects behind", wraps, after-before)
		}
	})
}
