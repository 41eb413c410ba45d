//go:build cgo

package hsm_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// TestProbeNeverUsesAMechanismThatWrapsTheWrongKey: a token that claims
// its mechanisms and answers well-formed blobs of another key (a fresh
// session key of the same kind) passes every shape check; the probe's
// comparison with the key it wrapped (the token's AES-ECB and HMAC answers,
// its public key) catches it: those specs get no algorithm, the reason is
// in the table `keyferry-agent check` prints, and Wrap refuses with
// *UnsupportedError instead of exporting the wrong key.
func TestProbeNeverUsesAMechanismThatWrapsTheWrongKey(t *testing.T) {
	ctx := context.Background()
	priv := kmsWrappingKey(t, keyspec.WrapRSA3072)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	forEachToken(t, func(t *testing.T, tok *token) {
		base, err := tok.h.Capabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		label := tok.key(t, keyspec.HMAC256, true)
		tok.h.ResetProbeForTest()
		restore := tok.h.WrapOtherKeysForTest()
		caps, err := tok.h.Capabilities(ctx)
		if err != nil {
			restore()
			t.Fatal(err)
		}
		_, werr := tok.h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA256)
		restore()
		tok.h.ResetProbeForTest()
		defer func() {
			if _, err := tok.h.Capabilities(ctx); err != nil {
				t.Fatalf("probe after the test: %v", err)
			}
		}()
		table := hsm.FormatCapabilities(caps)
		checked := 0
		for i, c := range caps {
			info := keyspec.MustLookup(c.KeySpec)
			if info.Family == keyspec.FamilyRSA || len(base[i].Algorithms) == 0 {
				continue // the seam does not imitate RSA keys; nothing to lose where nothing worked
			}
			if tok.name == "opencryptoki" && c.KeySpec == keyspec.HMAC224 {
				// opencryptoki 3.8 has no CKM_SHA224_HMAC: the probe cannot
				// ask the token about that key, so only the shape is checked.
				continue
			}
			checked++
			if len(c.Algorithms) != 0 {
				t.Errorf("%s: offers %v although every blob holds another key", c.KeySpec, c.Algorithms)
			}
			for _, a := range base[i].Algorithms {
				why := c.Mechanisms[a]
				if !strings.Contains(why, "different key") && !strings.Contains(why, "does not unwrap with the reference") {
					t.Errorf("%s %s: reason %q does not say the blob holds another key", c.KeySpec, a, why)
				}
			}
		}
		if checked < 4 { // SYMMETRIC_DEFAULT and the HMAC specs at least
			t.Fatalf("only %d specs checked:\n%s", checked, table)
		}
		if !strings.Contains(table, "unwraps to a different key than the one wrapped") {
			t.Errorf("the table check prints does not give the reason:\n%s", table)
		}
		var ue *hsm.UnsupportedError
		if !errors.As(werr, &ue) {
			t.Fatalf("Wrap while the token wraps other keys: %v, want *UnsupportedError", werr)
		}
		t.Logf("%s under the seam:\n%s", tok.name, table)
	})
}
