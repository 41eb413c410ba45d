package policy

import (
	"context"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/protocol"
)

// BenchmarkCheck measures a full policy decision for a valid request
// (decode, ECDSA verify, strict payload checks, replay cache, limits).
func BenchmarkCheck(b *testing.B) {
	f := newFixture(b, func(c *Config) {
		c.GlobalRate = Rate{PerMinute: 1e9, Burst: 1 << 30}
		c.GroupRate = Rate{PerMinute: 1e9, Burst: 1 << 30}
		c.ReplayCacheSize = 1 << 24
	})
	f.now = time.Now().UTC()
	var msgs [][]byte
	for i := 0; i < 2000; i++ {
		r := f.request(b, func(r *protocol.WrapRequest) { r.IssuedAt, r.ExpiresAt = f.now, f.now.Add(10*time.Minute) })
		m, err := protocol.Seal(context.Background(), f.cp, "control-plane", protocol.ActionWrapRequest, r)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		env, err := protocol.Decode(msgs[i%len(msgs)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.pol.Check(context.Background(), env); err != nil && i < len(msgs) {
			b.Fatal(err)
		}
		i++
	}
}
