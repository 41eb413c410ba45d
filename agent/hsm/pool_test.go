//go:build cgo

package hsm_test

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
)

// Simulated device loss: the module is finalised underneath a live pool;
// the next operation re-initialises, re-logs in and succeeds.
func TestRecoveryAfterModuleFinalized(t *testing.T) {
	ctx := context.Background()
	priv := kmsWrappingKey(t, keyspec.WrapRSA2048)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	forEachToken(t, func(t *testing.T, tok *token) {
		label := tok.key(t, keyspec.SymmetricDefault, true)
		// Fill the idle pool with several sessions first.
		var wg sync.WaitGroup
		for i := 0; i < tok.cfg.PoolSize; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); _ = tok.h.WithSessionForTest(ctx) }()
		}
		wg.Wait()
		if err := tok.h.RawCtxForTest().Finalize(); err != nil {
			t.Fatalf("Finalize underneath the pool: %v", err)
		}
		if _, err := tok.h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA1); err != nil {
			t.Fatalf("Wrap after device loss: %v", err)
		}
		// Concurrent operations after a second loss recover once and all succeed.
		if err := tok.h.RawCtxForTest().Finalize(); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func() { _, err := tok.h.Find(ctx, label); errs <- err }()
		}
		for i := 0; i < 8; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("Find after second loss: %v", err)
			}
		}
	})
}

// Waiting for a session honours ctx, and sessions always return to the pool
// (also after failed operations).
func TestPoolIsBoundedAndContextAware(t *testing.T) {
	ctx := context.Background()
	tok := tokens[0]
	release, err := tok.h.HoldSessionsForTest(ctx, tok.cfg.PoolSize)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tok.h.WithSessionForTest(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a full pool and a cancelled ctx: %v, want context.Canceled", err)
	}
	release()
	for i := 0; i < 3*tok.cfg.PoolSize; i++ {
		if _, err := tok.h.Find(ctx, "kf/missing/1"); !errors.Is(err, hsm.ErrKeyNotFound) {
			t.Fatalf("Find(missing): %v, want ErrKeyNotFound", err)
		}
	}
	if n := tok.h.IdleSessionsForTest(); n < 1 || n > tok.cfg.PoolSize {
		t.Fatalf("idle sessions %d, want 1..%d", n, tok.cfg.PoolSize)
	}
}
