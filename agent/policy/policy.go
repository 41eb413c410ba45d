package policy

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Rate is a token bucket: PerMinute sustained, Burst at once.
type Rate struct {
	PerMinute float64
	Burst     int
}

func (r Rate) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(r.PerMinute/60), r.Burst)
}

// Config is the local policy.
type Config struct {
	// Verifier holds the pinned control-plane public key.
	Verifier  *protocol.Verifier
	ClockSkew time.Duration
	Accounts  []string
	Regions   []string
	// Groups lists allowed key groups; "*" allows any.
	Groups             []string
	KeySpecs           []keyspec.Spec
	MinWrappingKeyBits int
	GlobalRate         Rate
	GroupRate          Rate
	ReplayCacheSize    int
	Pins               *PinStore
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Policy checks wrap requests. It is safe for concurrent use.
type Policy struct {
	cfg    Config
	replay *ReplayCache
	global *rate.Limiter

	mu     sync.Mutex
	groups map[string]*rate.Limiter
}

// New builds a Policy.
func New(cfg Config) *Policy {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReplayCacheSize <= 0 {
		cfg.ReplayCacheSize = 100000
	}
	return &Policy{cfg: cfg, replay: NewReplayCache(cfg.ReplayCacheSize), global: cfg.GlobalRate.limiter(), groups: map[string]*rate.Limiter{}}
}

// Pins returns the pin store.
func (p *Policy) Pins() *PinStore { return p.cfg.Pins }

// Check opens env as a wrap request and applies every rule, in this order:
// signature and validity window (protocol.OpenWrapRequest), replay,
// accounts, regions, groups, key specs, wrapping-key size, key pinning (for
// a request naming an HSM label), then the group and global rate limits.
// It touches no HSM. The returned error is a *Refusal.
func (p *Policy) Check(ctx context.Context, env *protocol.Envelope) (*protocol.WrapRequest, error) {
	if err := ctx.Err(); err != nil {
		return nil, refuse(ReasonBadRequest, protocol.CodeInternal, err, "cancelled")
	}
	now := p.cfg.Now()
	req, err := protocol.OpenWrapRequest(env, p.cfg.Verifier, now, p.cfg.ClockSkew)
	if err != nil {
		var ce *protocol.ClockError
		if errors.As(err, &ce) {
			// Signed and well formed, only outside its window: the refusal
			// names the request and job so the control plane can ask again.
			return &protocol.WrapRequest{RequestID: ce.RequestID, JobID: ce.JobID}, fromProtocol(err)
		}
		return nil, fromProtocol(err)
	}
	switch p.replay.add(req.Nonce.String(), req.ExpiresAt.Add(p.cfg.ClockSkew), now) {
	case replayed:
		return req, refuse(ReasonReplay, protocol.CodeReplayed, nil, "nonce of request %s was already used", req.RequestID)
	case full:
		return req, refuse(ReasonReplayCacheFull, protocol.CodeRateLimited, nil, "replay cache full (%d live nonces)", p.cfg.ReplayCacheSize)
	}
	if !slices.Contains(p.cfg.Accounts, req.Account) {
		return req, refuse(ReasonAccount, protocol.CodePolicyRefused, nil, "account %s is not allowed", req.Account)
	}
	if !slices.Contains(p.cfg.Regions, req.Region) {
		return req, refuse(ReasonRegion, protocol.CodePolicyRefused, nil, "region %s is not allowed", req.Region)
	}
	if !slices.Contains(p.cfg.Groups, "*") && !slices.Contains(p.cfg.Groups, req.Group) {
		return req, refuse(ReasonGroup, protocol.CodePolicyRefused, nil, "group %q is not allowed", req.Group)
	}
	if !slices.Contains(p.cfg.KeySpecs, req.KeySpec) {
		return req, refuse(ReasonKeySpec, protocol.CodePolicyRefused, nil, "key spec %s is not allowed", req.KeySpec)
	}
	if bits := req.WrappingKeySpec.Bits(); bits < p.cfg.MinWrappingKeyBits {
		return req, refuse(ReasonWrappingKeySize, protocol.CodePolicyRefused, nil, "wrapping key RSA-%d is below the minimum RSA-%d", bits, p.cfg.MinWrappingKeyBits)
	}
	if req.HSMLabel != "" && p.cfg.Pins != nil {
		if err := p.cfg.Pins.Check(req.HSMLabel, req.KeyARN); err != nil {
			return req, err
		}
	}
	if err := p.take(now, req.Group); err != nil {
		return req, err
	}
	return req, nil
}

// take consumes one token from the group bucket and one from the global
// bucket, or none (a refused request does not use up the other bucket).
func (p *Policy) take(now time.Time, group string) error {
	p.mu.Lock()
	gl, ok := p.groups[group]
	if !ok {
		gl = p.cfg.GroupRate.limiter()
		p.groups[group] = gl
	}
	p.mu.Unlock()
	gr := gl.ReserveN(now, 1)
	if !gr.OK() || gr.DelayFrom(now) > 0 {
		gr.CancelAt(now)
		return refuse(ReasonRateGroup, protocol.CodeRateLimited, nil, "group %q is above %.4g requests/minute (burst %d)", group, p.cfg.GroupRate.PerMinute, p.cfg.GroupRate.Burst)
	}
	r := p.global.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		gr.CancelAt(now)
		return refuse(ReasonRateGlobal, protocol.CodeRateLimited, nil, "agent is above %.4g requests/minute (burst %d)", p.cfg.GlobalRate.PerMinute, p.cfg.GlobalRate.Burst)
	}
	return nil
}
