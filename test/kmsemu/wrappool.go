package kmsemu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// wrapPool keeps a few RSA wrapping keys of each size generated in the
// background, because RSA-4096 key generation takes around a second and
// every GetParametersForImport call needs a fresh key. A size's refill
// goroutine starts on the first request for that size, so servers that
// never import spend no CPU on key generation.
type wrapPool struct {
	ctx  context.Context
	size int

	mu sync.Mutex
	ch map[keyspec.WrappingKeySpec]chan *rsa.PrivateKey
}

func newWrapPool(ctx context.Context, size int) *wrapPool {
	return &wrapPool{ctx: ctx, size: size, ch: map[keyspec.WrappingKeySpec]chan *rsa.PrivateKey{}}
}

// channel returns the pool channel of w, starting its refill goroutine on
// first use; nil when pooling is off.
func (p *wrapPool) channel(w keyspec.WrappingKeySpec) chan *rsa.PrivateKey {
	if p.size <= 0 || w.Bits() == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.ch[w]; ok {
		return ch
	}
	ch := make(chan *rsa.PrivateKey, p.size)
	p.ch[w] = ch
	go func(bits int) {
		for {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				return
			}
			select {
			case ch <- k:
			case <-p.ctx.Done():
				return
			}
		}
	}(w.Bits())
	return ch
}

// get returns a never-used wrapping key of spec w: from the pool when one
// is ready, generated now otherwise.
func (p *wrapPool) get(w keyspec.WrappingKeySpec) (*rsa.PrivateKey, error) {
	if w.Bits() == 0 {
		return nil, fmt.Errorf("unknown wrapping key spec %q", w)
	}
	if ch := p.channel(w); ch != nil {
		select {
		case k := <-ch:
			return k, nil
		default:
		}
	}
	return rsa.GenerateKey(rand.Reader, w.Bits())
}
