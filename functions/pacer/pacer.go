// Package pacer keeps the control plane's KMS calls below the per-account,
// per-region request quotas, and treats ThrottlingException as back-pressure
// (the bucket slows down and the call is retried after a jittered pause)
// instead of an error.
//
// The quotas are account-wide while Lambda instances share no memory, so
// the operations with small quotas (every mutating call keyferry makes:
// GetParametersForImport at 1/s, CreateKey, ImportKeyMaterial,
// UpdateAlias, RotateKeyOnDemand, ...) are paced by the Ledger, a GCRA
// bucket in DynamoDB that every instance of every function shares. The
// operations with quotas in the thousands (DescribeKey, Encrypt, Sign...)
// are paced per instance, where a token bucket in memory is enough: a
// function's concurrency times its rate stays far below them.
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

// DefaultFraction of each quota the pacer uses. The ledger spaces calls
// strictly (no bursts) account-wide, so 95 % never exceeds a per-second
// quota; the 5 % left is for clock differences between instances and for
// callers outside keyferry.
const DefaultFraction = 0.95

// SharedQuotaMax: operations whose quota (requests/s) is at most this are
// paced account-wide by the Ledger.
const SharedQuotaMax = 100

// DeadlineMargin is kept free before a caller's context deadline: a slot
// later than that is refused (*PacedOutError) rather than waited for.
const DeadlineMargin = 3 * time.Second

// ErrGaveUp wraps the last ThrottlingException when MaxThrottleRetries ran out.
var ErrGaveUp = errors.New("pacer: still throttled after retries")

// Pacer hands out permission to call KMS.
type Pacer struct {
	// Fraction of the quota to use (default DefaultFraction).
	Fraction float64
	// Scale multiplies every quota (emulators run with scaled quotas; 1 = AWS).
	Scale float64
	// MaxThrottleRetries bounds retries of throttled calls (default 8).
	MaxThrottleRetries int
	// Ledger, when set, paces the operations whose quota is at most
	// SharedQuotaMax account-wide (DynamoDB); nil paces them per instance.
	Ledger *Ledger
	// MaxWait bounds how long a call waits for its account-wide slot when
	// its context has no deadline (default 20 s). With a deadline, the
	// slot must come DeadlineMargin before it.
	MaxWait time.Duration

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
		r := p.rate(op)
		burst := max(1, int(r/4))
		l = rate.NewLimiter(rate.Limit(r), burst)
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
// and on ThrottlingException slows the bucket down and retries after a
// jittered pause. With a Ledger, ops with small quotas take their token
// from the account-wide bucket; a *PacedOutError means the account's queue
// for op reaches past ctx's deadline (nothing was called; try later).
func (p *Pacer) Do(ctx context.Context, scope, op string, f func(context.Context) error) error {
	if p == nil {
		return f(ctx)
	}
	shared := p.Ledger != nil && p.quota(op) <= SharedQuotaMax
	var l *rate.Limiter
	if !shared {
		l = p.limiter(scope, op)
	}
	maxRetries := p.MaxThrottleRetries
	if maxRetries <= 0 {
		maxRetries = 8
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if shared {
			if err := p.waitShared(ctx, scope, op); err != nil {
				return err
			}
		} else if err := l.Wait(ctx); err != nil {
			return fmt.Errorf("pacer %s: %w", op, err)
		}
		err := f(ctx)
		if !IsThrottle(err) {
			return err
		}
		if shared {
			p.sharedBackPressure(ctx, scope, op)
		} else {
			p.backPressure(scope+"|"+op, l)
		}
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

// rate returns op's paced rate in requests per second.
func (p *Pacer) rate(op string) float64 {
	f, s := p.Fraction, p.Scale
	if f <= 0 {
		f = DefaultFraction
	}
	if s <= 0 {
		s = 1
	}
	return p.quota(op) * f * s
}

func (p *Pacer) quota(op string) float64 {
	if q, ok := Quotas[op]; ok {
		return q
	}
	return 5
}

func (p *Pacer) interval(op string) time.Duration {
	return time.Duration(float64(time.Second) / p.rate(op))
}

// latest is the latest account-wide slot a caller with ctx can use.
func (p *Pacer) latest(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl.Add(-DeadlineMargin)
	}
	w := p.MaxWait
	if w <= 0 {
		w = 20 * time.Second
	}
	return p.Ledger.now().Add(w)
}

// waitShared takes op's next account-wide slot and sleeps until it.
func (p *Pacer) waitShared(ctx context.Context, scope, op string) error {
	slot, err := p.Ledger.reserve(ctx, scope+"|"+op, op, p.interval(op), p.latest(ctx))
	if err != nil {
		return err
	}
	if d := slot.Sub(p.Ledger.now()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("pacer %s: %w", op, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// sharedBackPressure: a throttle seen by any instance costs the account
// two slots of op, so every instance slows down, not only this one.
func (p *Pacer) sharedBackPressure(ctx context.Context, scope, op string) {
	p.mu.Lock()
	if p.throttle == nil {
		p.throttle = map[string]int{}
	}
	p.throttle[scope+"|"+op]++
	p.mu.Unlock()
	_, _ = p.Ledger.reserve(ctx, scope+"|"+op, op, 2*p.interval(op), p.latest(ctx))
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
