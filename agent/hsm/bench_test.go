//go:build cgo

package hsm_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// BenchmarkGenerateWrap measures keygen + wrap (+ destroy, to keep the token
// small) on SoftHSM2 for every supported (spec, algorithm), under an RSA_4096
// wrapping key where legal. Run: go test -run '^$' -bench GenerateWrap ./agent/hsm/
func BenchmarkGenerateWrap(b *testing.B) {
	ctx := context.Background()
	tok := tokens[0]
	caps, err := tok.h.Capabilities(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range caps {
		for _, alg := range c.Algorithms {
			w := c.WrappingKeySpecs[0]
			priv := kmsWrappingKey(b, w)
			der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
			b.Run(string(c.KeySpec)+"/"+string(alg), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					label := newLabel(b, "bench")
					if _, err := tok.h.Generate(ctx, label, c.KeySpec); err != nil {
						b.Fatal(err)
					}
					if _, err := tok.h.Wrap(ctx, label, der, alg); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := tok.h.Destroy(ctx, label, label); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
	}
	_ = keyspec.All
}
