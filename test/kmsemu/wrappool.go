package kmsemu

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// wrapPool keeps a few RSA wrapping keys of each size generated in the
// background, because RSA-4096 key generation takes around a second and
// every GetParametersForImport call needs a fresh key.
type wrapPool struct {
	ch map[keyspec.WrappingKeySpec]chan *rsa.PrivateKey
}

func newWrapPool(ctx context.Context, size int) *wrapPool {
	p := &wrapPool{ch: map[keyspec.WrappingKeySpec]chan *rsa.PrivateKey{}}
	if size < 0 {
		return p
	}
	for _, w := range keyspec.WrappingKeySpecs() {
		ch := make(chan *rsa.PrivateKey, size)
		p.ch[w] = ch
		go func(bits int) {
			for {
				k, err := rsa.GenerateKey(rand.Reader, bits)
				if err != nil {
					return
				}
				select {
				case ch <- k:
				case <-ctx.Done():
					return
				}
			}
		}(w.Bits())
	}
	return p
}

// get returns a never-used wrapping key of spec w: from the pool when one
// is ready, generated now otherwise.
func (p *wrapPool) get(w keyspec.WrappingKeySpec) (*rsa.PrivateKey, error) {
	if ch, ok := p.ch[w]; ok {
		select {
		case k := <-ch:
			return k, nil
		default:
		}
	}
	if w.Bits() == 0 {
		return nil, fmt.Errorf("unknown wrapping key spec %q", w)
	}
	return rsa.GenerateKey(rand.Reader, w.Bits())
}
