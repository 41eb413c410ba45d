package hsmtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
)

func TestFixturesOpenAndStartEmpty(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(testing.TB) hsm.Config
	}{
		{"softhsm2", hsmtest.SoftHSM},
		{"opencryptoki", hsmtest.OpenCryptoki},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(t)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("fixture config invalid: %v", err)
			}
			ctx := context.Background()
			h, err := hsm.Open(ctx, cfg)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer h.Close()
			n, err := h.CountObjects(ctx)
			if err != nil {
				t.Fatalf("CountObjects: %v", err)
			}
			if n != 0 {
				t.Fatalf("fresh token holds %d objects, want 0", n)
			}
			_, err = h.Identity(ctx, "kf-agent-identity")
			want := 2 // private + public
			if tc.name == "opencryptoki" {
				// opencryptoki 3.8's soft token has no CKM_EC_KEY_PAIR_GEN.
				if !errors.Is(err, hsm.ErrUnsupportedMechanism) {
					t.Fatalf("Identity on opencryptoki: %v, want ErrUnsupportedMechanism", err)
				}
				t.Logf("opencryptoki identity: %v", err)
				want = 0
			} else if err != nil {
				t.Fatalf("Identity: %v", err)
			}
			if n, _ := h.CountObjects(ctx); n != want {
				t.Fatalf("after Identity: %d objects, want %d", n, want)
			}
		})
	}
}

// A second fixture in the same process is a different, empty token.
func TestSoftHSMTokensAreIndependent(t *testing.T) {
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		cfg := hsmtest.SoftHSM(t)
		h, err := hsm.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		if n, err := h.CountObjects(ctx); err != nil || n != 0 {
			t.Fatalf("token #%d: %d objects, err %v; want an empty token", i, n, err)
		}
		if _, err := h.Identity(ctx, "id"); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
