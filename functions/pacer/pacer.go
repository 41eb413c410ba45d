// Package pacer keeps the control plane's KMS calls below the per-account,
// per-region request quotas: one token bucket per (account-region,
// operation) at a fraction of the published quota, and ThrottlingException
// treated as back-pressure (the bucket slows down and the call is retried
// after a jittered pause) instead of an error.
//
// The limiter is shared by every goroutine of a process; Lambda instances
// each run their own, so Fraction should leave room for concurrency (the
// rotate function is deployed with reserved concurrency 1 per
// account-region, which makes this limiter the account-wide one).
package pacer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"
)

// Quotas are AWS KMS's published requests-per-second quotas per account and
// region for the operations keyferry calls (DESIGN.md).
var Quotas = map[string]float64{
	"GetParametersForImport":    1,
	"CreateKey":                 5,
	"UpdateAlias":               5,
	"CreateAlias":               5,
	"RotateKeyOnDemand":         5,
	"ImportKeyMaterial":         15,
	"DeleteImportedKeyMaterial": 15,
	"EnableKey":                 5,
	"DisableKey":                5,
	"ScheduleKeyDeletion":       15,
	"TagResource":               10,
	"DescribeKey":               2000,
	"ListKeyRotations":          100,
	"GetKeyRotationStatus":      100,
	"GetPublicKey":              2000,
	"Sign":                      500,
	"Encrypt":                   5500,
	"Decrypt":                   5500,
	"GenerateMac":               500,
}

// ErrGaveUp wraps the last ThrottlingException when MaxThrottleRetries ran out.
var ErrGaveUp = errors.New("pacer: still throttled after retries")

// Pacer hands out permission to call KMS.
type Pacer struct {
	// Fraction of the quota to use (default 0.8).
	Fraction float64
	// Scale multiplies every quota (emulators run with scaled quotas; 1 = AWS).
	Scale float64
	// MaxThrottleRetries bounds retries of throttled calls (default 8).
	MaxThrottleRetries int

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	base     map[string]rate.Limit
	slowed   map[string]time.Time
	throttle map[string]int
}

// New returns a Pacer at fraction of the quotas times scale.
func New(fraction, scale float64) *Pacer {
	return &Pacer{Fraction: fraction, Scale: scale, MaxThrottleRetries: 8}
}

func (p *Pacer) limiter(scope, op string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limiters == nil {
		p.limiters = map[string]*rate.Limiter{}
		p.base = map[string]rate.Limit{}
		p.slowed = map[string]time.Time{}
		p.throttle = map[string]int{}
	}
	k := scope + "|" + op
	l, ok := p.limiters[k]
	if !ok {
		q, known := Quotas[op]
		if !known {
			q = 5
		}
		f, s := p.Fraction, p.Scale
		if f <= 0 {
			f = 0.8
		}
		if s <= 0 {
			s = 1
		}
		burst := max(1, int(q*f*s/4))
		l = rate.NewLimiter(rate.Limit(q*f*s), burst)
		p.limiters[k] = l
		p.base[k] = l.Limit()
	}
	return l
}

// Throttled returns how many ThrottlingExceptions were seen for op in scope.
func (p *Pacer) Throttled(scope, op string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.throttle[scope+"|"+op]
}

// IsThrottle reports whether err is a KMS ThrottlingException.
func IsThrottle(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "ThrottlingException" || ae.ErrorCode() == "Throttling")
}

// Do waits for a token of op in scope (an "account/region" string), calls f,
// and on ThrottlingException halves the bucket's rate for a while and
// retries after a jittered pause.
func (p *Pacer) Do(ctx context.Context, scope, op string, f func(context.Context) error) error {
	if p == nil {
		return f(ctx)
	}
	l := p.limiter(scope, op)
	maxRetries := p.MaxThrottleRetries
	if maxRetries <= 0 {
		maxRetries = 8
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if err := l.Wait(ctx); err != nil {
			return fmt.Errorf("pacer %s: %w", op, err)
		}
		err := f(ctx)
		if !IsThrottle(err) {
			return err
		}
		p.backPressure(scope+"|"+op, l)
		if attempt >= maxRetries {
			return fmt.Errorf("%w: %s: %w", ErrGaveUp, op, err)
		}
		pause := backoff + time.Duration(rand.Int64N(int64(backoff)))
		if backoff < 2*time.Second {
			backoff *= 2
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pacer %s: %w", op, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// backPressure halves the bucket's rate at most once a second (concurrent
// throttles of one burst count once), never below a tenth of the base
// rate, and restores it step by step after quiet periods.
func (p *Pacer) backPressure(k string, l *rate.Limiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttle[k]++
	now := time.Now()
	if now.Sub(p.slowed[k]) < time.Second {
		return
	}
	p.slowed[k] = now
	base := p.base[k]
	l.SetLimit(max(l.Limit()/2, base/10))
	go func() {
		time.Sleep(2 * time.Second)
		p.mu.Lock()
		defer p.mu.Unlock()
		if time.Since(p.slowed[k]) >= 2*time.Second {
			l.SetLimit(min(base, l.Limit()*2))
		}
	}()
}
