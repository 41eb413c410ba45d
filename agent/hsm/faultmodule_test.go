//go:build hsmfault && cgo

package hsm_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// TestWrapSurvivesDeviceErrorMidWrapAndSessionLoss: C_WrapKey answering
// CKR_DEVICE_ERROR after it ran, or a session closed under the caller, is
// recovered (module re-initialised, the wrap retried once on a fresh
// session) and the blob is the HSM key's; two faults in a row give a typed
// error naming C_WrapKey, and the pool works afterwards.
func TestWrapSurvivesDeviceErrorMidWrapAndSessionLoss(t *testing.T) {
	ctx := context.Background()
	priv := kmsWrappingKey(t, keyspec.WrapRSA2048)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	forEachToken(t, func(t *testing.T, tok *token) {
		label := tok.key(t, keyspec.SymmetricDefault, false)
		want, err := tok.h.ReadValueForTest(ctx, label)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			faults []hsm.FaultKind
			fails  error
		}{
			{"device error mid-wrap", []hsm.FaultKind{hsm.FaultDeviceErrorMidWrap}, nil},
			{"session loss", []hsm.FaultKind{hsm.FaultSessionLoss}, nil},
			{"device error twice", []hsm.FaultKind{hsm.FaultDeviceErrorMidWrap, hsm.FaultDeviceErrorMidWrap}, hsm.ErrDeviceLost},
			{"session loss twice", []hsm.FaultKind{hsm.FaultSessionLoss, hsm.FaultSessionLoss}, hsm.ErrSessionClosed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				restore := tok.h.InjectWrapFaultsForTest(tc.faults...)
				blob, err := tok.h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA1)
				restore()
				if tc.fails != nil {
					if !errors.Is(err, tc.fails) || !strings.Contains(err.Error(), "C_WrapKey") {
						t.Fatalf("Wrap = %v, want %v naming C_WrapKey", err, tc.fails)
					}
				} else if err != nil {
					t.Fatalf("Wrap after one %s: %v", tc.name, err)
				} else if got, err := wrapping.Unwrap(priv, keyspec.RSAESOAEPSHA1, blob); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("blob after recovery does not unwrap to the HSM key (%v)", err)
				}
				// The pool is healthy afterwards.
				if _, err := tok.h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA1); err != nil {
					t.Fatalf("Wrap after the faults: %v", err)
				}
			})
		}
	})
}

// TestProbeSurvivesTransientFaults: the capability probe (dozens of trial
// wraps at agent start) meets device errors and session losses, twice in a
// row, and still reports exactly the capabilities of an undisturbed probe
// (the soak found an agent that exited at start on one such fault).
func TestProbeSurvivesTransientFaults(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		base, err := tok.h.Capabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tok.h.ResetProbeForTest()
		restore := tok.h.InjectWrapFaultsForTest(hsm.FaultDeviceErrorMidWrap, hsm.FaultSessionLoss, "", "", hsm.FaultSessionLoss, hsm.FaultDeviceErrorMidWrap, "", hsm.FaultDeviceErrorMidWrap)
		got, err := tok.h.Capabilities(ctx)
		restore()
		if err != nil {
			t.Fatalf("probe under faults: %v", err)
		}
		// What can be wrapped, how, under which keys (the notes on refused
		// combinations quote byte counts of random trial keys).
		summary := func(caps []hsm.Capability) string {
			var b strings.Builder
			for _, c := range caps {
				fmt.Fprintf(&b, "%s %v %v %q", c.KeySpec, c.Algorithms, c.WrappingKeySpecs, c.Missing)
				for _, a := range c.Algorithms {
					fmt.Fprintf(&b, " %s=%s", a, c.Mechanisms[a])
				}
				b.WriteString("\n")
			}
			return b.String()
		}
		if a, b := summary(base), summary(got); a != b {
			t.Fatalf("capabilities under faults differ:\n%s\nwant\n%s", b, a)
		}
	})
}
