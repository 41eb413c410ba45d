//go:build cgo

package hsm_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// TestWrapFindsAKeyAnotherSessionJustCreated: a token whose searches miss
// a freshly created key for a moment (SoftHSM2 under concurrent sessions)
// still wraps it; a key that really is absent is reported as absent.
func TestWrapFindsAKeyAnotherSessionJustCreated(t *testing.T) {
	ctx := context.Background()
	priv := kmsWrappingKey(t, keyspec.WrapRSA2048)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	forEachToken(t, func(t *testing.T, tok *token) {
		label := tok.key(t, keyspec.SymmetricDefault, false)
		restore := tok.h.MissFindsForTest(3)
		_, err := tok.h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA1)
		restore()
		if err != nil {
			t.Fatalf("Wrap while the token missed the key 3 times: %v", err)
		}
		restore = tok.h.MissFindsForTest(1000)
		_, err = tok.h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA1)
		restore()
		if !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("Wrap of a key the token never finds: %v, want ErrKeyNotFound", err)
		}
	})
}

// TestKeygenRaceIsNotUnsupported: C_GenerateKey answering
// CKR_TEMPLATE_INCONSISTENT for a spec the token's probe generated (SoftHSM2
// under concurrent sessions) is tried again and the key is made, once;
// only a refusal that persists is reported as unsupported.
func TestKeygenRaceIsNotUnsupported(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		if _, err := tok.h.Capabilities(ctx); err != nil {
			t.Fatal(err)
		}
		label := newLabel(t, "race")
		restore := tok.h.FailKeygenForTest(1)
		_, err := tok.h.Generate(ctx, label, keyspec.SymmetricDefault)
		restore()
		if err != nil {
			t.Fatalf("Generate after one racy refusal: %v", err)
		}
		if _, err := tok.h.Find(ctx, label); err != nil {
			t.Fatalf("the key is not there: %v", err)
		}
		other := newLabel(t, "race")
		restore = tok.h.FailKeygenForTest(100)
		_, err = tok.h.Generate(ctx, other, keyspec.SymmetricDefault)
		restore()
		var unsup *hsm.UnsupportedError
		if !errors.As(err, &unsup) {
			t.Fatalf("Generate refused every time: %v, want UnsupportedError", err)
		}
	})
}

// TestGenerateGoesAheadWhenTheTokenRefusesItsLock: the generation lock's
// own C_GenerateKey meets the same race (one refusal: the lock is taken on
// the next try); a token that keeps refusing the lock object still
// generates the key, serialised within this agent only, and leaves no
// lock object behind.
func TestGenerateGoesAheadWhenTheTokenRefusesItsLock(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		if _, err := tok.h.Capabilities(ctx); err != nil {
			t.Fatal(err)
		}
		for _, fails := range []int{1, hsm.GenLockTriesForTest} {
			label := newLabel(t, "lockrefused")
			restore := tok.h.FailKeygenForTest(fails)
			_, err := tok.h.Generate(ctx, label, keyspec.SymmetricDefault)
			restore()
			if err != nil {
				t.Fatalf("%d refusals: Generate: %v", fails, err)
			}
			if _, err := tok.h.Find(ctx, label); err != nil {
				t.Fatalf("%d refusals: the key is not there: %v", fails, err)
			}
			if _, err := tok.h.Find(ctx, "kf-genlock/"+label); !errors.Is(err, hsm.ErrKeyNotFound) {
				t.Fatalf("%d refusals: a lock object is left: %v", fails, err)
			}
		}
	})
}
