//go:build cgo

package hsm

import (
	"context"
	"errors"
	"time"
)

// settleDelays are the pauses before a lookup of a key is believed absent.
// SoftHSM2 (2.6.1 here) keeps token objects in files that every session
// re-reads; under concurrent sessions a key just created in one session can
// be missing from another's C_FindObjects for a moment (SoftHSMv2 #358,
// #573). The bench's fleet once failed a job so: "hsm: token ... holds no
// key labelled kf/fleet-inplace-413/1" right after that key was generated.
var settleDelays = []time.Duration{25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}

// settle runs f, and again after each settle delay while it answers
// ErrKeyNotFound: a key that exists is found within about 400 ms; one that
// does not is reported after that.
func (h *HSM) settle(ctx context.Context, f func() error) error {
	err := f()
	for _, d := range settleDelays {
		if !errors.Is(err, ErrKeyNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
		err = f()
	}
	return err
}

// findSettled is Find for a key the caller expects to exist.
func (h *HSM) findSettled(ctx context.Context, label string) (*Key, error) {
	var k *Key
	err := h.settle(ctx, func() (err error) {
		k, err = h.Find(ctx, label)
		return err
	})
	return k, err
}
