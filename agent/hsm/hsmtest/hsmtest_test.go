//go:build cgo

package hsmtest_test

import (
	"context"
	"errors"
	"strings"
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
		{"nss", hsmtest.NSS},
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

// A second NSS database in the same process (after closing the first HSM)
// is a different, empty token: the softoken is re-initialised with the new
// database's configuration string.
func TestNSSTokensAreIndependent(t *testing.T) {
	ctx := context.Background()
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		cfg := hsmtest.NSS(t)
		if seen[cfg.TokenLabel] {
			t.Fatalf("token label %s used twice", cfg.TokenLabel)
		}
		seen[cfg.TokenLabel] = true
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

// NSS softoken's two tokens share the serial 0000000000000000: selecting
// by it is refused as ambiguous, naming both, and a wrong PIN is ErrPIN.
func TestNSSTokenSelection(t *testing.T) {
	ctx := context.Background()
	cfg := hsmtest.NSS(t)
	bySerial := cfg
	bySerial.TokenLabel, bySerial.TokenSerial = "", "0000000000000000"
	_, err := hsm.Open(ctx, bySerial)
	if !errors.Is(err, hsm.ErrAmbiguousToken) || !strings.Contains(err.Error(), "NSS Generic Crypto Services") || !strings.Contains(err.Error(), cfg.TokenLabel) {
		t.Fatalf("Open by the shared serial: %v, want ErrAmbiguousToken naming both tokens", err)
	}
	crypto := cfg
	crypto.TokenLabel = "no-such-token"
	if _, err := hsm.Open(ctx, crypto); !errors.Is(err, hsm.ErrTokenNotFound) {
		t.Fatalf("Open of a missing label: %v, want ErrTokenNotFound", err)
	}
	wrong := cfg
	wrong.PINFile = ""
	wrong.PINEnv = "KF_TEST_NSS_WRONG_PIN"
	t.Setenv("KF_TEST_NSS_WRONG_PIN", "not-the-pin")
	if _, err := hsm.Open(ctx, wrong); !errors.Is(err, hsm.ErrPIN) {
		t.Fatalf("Open with a wrong PIN: %v, want ErrPIN", err)
	}
	h, err := hsm.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open after refused attempts: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
