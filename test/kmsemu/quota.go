package kmsemu

import (
	"sync"
	"time"
)

// quotaGroup says which token bucket an operation draws from and at what
// rate (requests per second at QuotaScale 1). Operations that AWS meters in
// a shared quota share a group name.
type quotaGroup struct {
	name string
	rate float64
}

// quotas are AWS's published per-account, per-region request quotas
// (https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html);
// where AWS varies them by region the common value is used.
var quotas = map[string]quotaGroup{
	"GetParametersForImport":          {"GetParametersForImport", 1},
	"CreateKey":                       {"CreateKey", 5},
	"CreateAlias":                     {"CreateAlias", 5},
	"UpdateAlias":                     {"UpdateAlias", 5},
	"DeleteAlias":                     {"DeleteAlias", 5},
	"RotateKeyOnDemand":               {"RotateKeyOnDemand", 5},
	"ImportKeyMaterial":               {"ImportKeyMaterial", 15},
	"DeleteImportedKeyMaterial":       {"DeleteImportedKeyMaterial", 15},
	"EnableKey":                       {"EnableKey", 5},
	"DisableKey":                      {"DisableKey", 5},
	"ScheduleKeyDeletion":             {"ScheduleKeyDeletion", 15},
	"CancelKeyDeletion":               {"CancelKeyDeletion", 5},
	"TagResource":                     {"TagResource", 10},
	"UntagResource":                   {"UntagResource", 5},
	"PutKeyPolicy":                    {"PutKeyPolicy", 15},
	"GetKeyPolicy":                    {"GetKeyPolicy", 1000},
	"DescribeKey":                     {"DescribeKey", 2000},
	"GetPublicKey":                    {"GetPublicKey", 2000},
	"GetKeyRotationStatus":            {"GetKeyRotationStatus", 1000},
	"ListKeyRotations":                {"ListKeyRotations", 100},
	"ListKeys":                        {"ListKeys", 500},
	"ListAliases":                     {"ListAliases", 500},
	"ListResourceTags":                {"ListResourceTags", 2000},
	"Encrypt":                         {"crypto-symmetric", 50000},
	"Decrypt":                         {"crypto-symmetric", 50000},
	"ReEncrypt":                       {"crypto-symmetric", 50000},
	"GenerateDataKey":                 {"crypto-symmetric", 50000},
	"GenerateDataKeyWithoutPlaintext": {"crypto-symmetric", 50000},
	"GenerateMac":                     {"crypto-symmetric", 50000},
	"VerifyMac":                       {"crypto-symmetric", 50000},
	"Sign":                            {"crypto-asymmetric", 500},
	"Verify":                          {"crypto-asymmetric", 500},
}

// limiter is a set of token buckets keyed by quota group, on real time
// (quotas are per wall-clock second, independent of the emulator clock).
type limiter struct {
	mu      sync.Mutex
	scale   float64
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(scale float64, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{scale: scale, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token for op and reports whether it was available. A
// scale of 0 (or less) means unlimited; unknown operations are unlimited.
func (l *limiter) allow(op string) bool {
	if l == nil || l.scale <= 0 {
		return true
	}
	q, ok := quotas[op]
	if !ok {
		return true
	}
	rate := q.rate * l.scale
	burst := rate
	if burst < 1 {
		burst = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[q.name]
	if !ok {
		b = &bucket{tokens: burst, last: now}
		l.buckets[q.name] = b
	}
	b.tokens += now.Sub(b.last).Seconds() * rate
	if b.tokens > burst {
		b.tokens = burst
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
