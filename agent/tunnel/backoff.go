package tunnel

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with full jitter: attempt n waits a
// uniformly random duration in [0, min(Max, Initial*2^n)].
type Backoff struct {
	Initial, Max time.Duration
	attempt      int
}

// Next returns the wait before the next attempt and advances.
func (b *Backoff) Next() time.Duration {
	ceil := b.Initial
	for i := 0; i < b.attempt && ceil < b.Max; i++ {
		ceil *= 2
	}
	if ceil > b.Max {
		ceil = b.Max
	}
	b.attempt++
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// Ceiling returns the current upper bound without advancing.
func (b *Backoff) Ceiling() time.Duration {
	ceil := b.Initial
	for i := 0; i < b.attempt && ceil < b.Max; i++ {
		ceil *= 2
	}
	return min(ceil, b.Max)
}

// Reset starts over after a healthy connection.
func (b *Backoff) Reset() { b.attempt = 0 }
