package policy

import (
	"sync"
	"time"
)

// ReplayCache remembers the nonces of requests until they expire. It is
// bounded: when full, expired entries are dropped; if none are expired new
// requests are refused (fail closed) rather than forgetting a live nonce.
type ReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]time.Time
}

// NewReplayCache returns a cache holding at most max live nonces.
func NewReplayCache(max int) *ReplayCache {
	return &ReplayCache{max: max, entries: make(map[string]time.Time)}
}

// Result of ReplayCache.Add.
type addResult int

const (
	added addResult = iota
	replayed
	full
)

// add records nonce until expires; it reports a replay or a full cache.
func (c *ReplayCache) add(nonce string, expires, now time.Time) addResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.entries[nonce]; ok && now.Before(exp) {
		return replayed
	}
	if len(c.entries) >= c.max {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			return full
		}
	}
	c.entries[nonce] = expires
	return added
}

// Len returns the number of remembered nonces.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
