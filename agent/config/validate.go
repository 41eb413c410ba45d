package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/names"
)

// Problem is one validation finding with the YAML path it concerns.
type Problem struct {
	Path    string
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// ValidationError lists every problem found.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config: %d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Validate checks the whole configuration and returns a *ValidationError
// listing every problem, or nil.
func (c *Config) Validate() error {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	fileExists := func(path, p string) {
		if p == "" {
			add(path, "required")
			return
		}
		if st, err := os.Stat(p); err != nil {
			add(path, "%v", err)
		} else if st.IsDir() {
			add(path, "%s is a directory", p)
		}
	}

	if err := names.CheckAgentID(c.AgentID); err != nil {
		add("agent_id", "%v", err)
	}
	if c.Endpoint == "" {
		add("endpoint", "required: the API Gateway WebSocket stage URL")
	} else if u, err := url.Parse(c.Endpoint); err != nil {
		add("endpoint", "%v", err)
	} else if u.Scheme != "https" && u.Scheme != "wss" && !(u.Scheme == "ws" || u.Scheme == "http") {
		add("endpoint", "scheme %q: want https:// or wss://", u.Scheme)
	} else if (u.Scheme == "ws" || u.Scheme == "http") && !isLoopbackHost(u.Hostname()) {
		add("endpoint", "plain %s:// is only allowed to a loopback host (tests, sandbox)", u.Scheme)
	} else if u.Host == "" {
		add("endpoint", "no host")
	}
	if err := names.CheckPool(c.HSMPool); err != nil {
		// The control plane refuses at $connect any pool name it could not
		// register: refuse it here, where the operator can fix it.
		add("hsm_pool", "%v (the default is the token label; set hsm_pool to the pool's name in the key-group file)", err)
	}
	if err := names.CheckRegion(c.Region); err != nil {
		add("region", "%v", err)
	}
	if c.StateDir == "" {
		add("state_dir", "required")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level", "%q: want debug, info, warn or error", c.LogLevel)
	}

	h := c.HSM
	fileExists("hsm.module", h.Module)
	if (h.TokenLabel == "") == (h.TokenSerial == "") {
		add("hsm", "set exactly one of token_label and token_serial")
	}
	switch {
	case h.PINFile != "" && h.PINEnv != "":
		add("hsm", "set only one of pin_file and pin_env")
	case h.PINFile != "":
		fileExists("hsm.pin_file", h.PINFile)
		if st, err := os.Stat(h.PINFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			add("hsm.pin_file", "mode %v is readable by group or others; chmod 600", st.Mode().Perm())
		}
	case h.PINEnv != "":
		if _, ok := os.LookupEnv(h.PINEnv); !ok {
			add("hsm.pin_env", "environment variable %s is not set", h.PINEnv)
		}
	default:
		add("hsm", "set pin_file or pin_env (the PIN is never in this file)")
	}
	if h.PoolSize < 1 || h.PoolSize > 64 {
		add("hsm.pool_size", "%d: want 1..64", h.PoolSize)
	}
	if h.IdentityLabel == "" {
		add("hsm.identity_label", "required")
	}

	fileExists("control_plane.public_key_file", c.ControlPlane.PublicKeyFile)
	if s := c.ControlPlane.ClockSkew.D(); s < 0 || s > 10*time.Minute {
		add("control_plane.clock_skew", "%s: want 0..10m", s)
	}

	p := c.Policy
	if len(p.Accounts) == 0 {
		add("policy.accounts", "required: at least one AWS account id")
	}
	for i, a := range p.Accounts {
		if err := names.CheckAccount(a); err != nil {
			add(fmt.Sprintf("policy.accounts[%d]", i), "%v", err)
		}
	}
	if len(p.Regions) == 0 {
		add("policy.regions", "required: at least one region")
	}
	for i, r := range p.Regions {
		if err := names.CheckRegion(r); err != nil {
			add(fmt.Sprintf("policy.regions[%d]", i), "%v", err)
		}
	}
	if len(p.Groups) == 0 {
		add("policy.groups", "required: at least one key group (\"*\" allows any)")
	}
	for i, g := range p.Groups {
		if g == "*" {
			continue
		}
		if err := names.CheckGroup(g); err != nil {
			add(fmt.Sprintf("policy.groups[%d]", i), "%v", err)
		}
	}
	if len(p.KeySpecs) == 0 {
		add("policy.key_specs", "required: at least one key spec")
	}
	for i, s := range p.KeySpecs {
		if _, err := keyspec.Lookup(keyspec.Spec(s)); err != nil {
			add(fmt.Sprintf("policy.key_specs[%d]", i), "%v", err)
		}
	}
	switch p.MinWrappingKeyBits {
	case 2048, 3072, 4096:
	default:
		add("policy.min_wrapping_key_bits", "%d: want 2048, 3072 or 4096", p.MinWrappingKeyBits)
	}
	for name, r := range map[string]Rate{"policy.global_rate": p.GlobalRate, "policy.group_rate": p.GroupRate} {
		if r.PerMinute <= 0 {
			add(name+".per_minute", "%v: must be > 0", r.PerMinute)
		}
		if r.Burst < 1 {
			add(name+".burst", "%d: must be >= 1", r.Burst)
		}
	}
	if p.ReplayCacheSize < 100 {
		add("policy.replay_cache_size", "%d: want >= 100", p.ReplayCacheSize)
	}

	t := c.Tunnel
	if hb := t.HeartbeatInterval.D(); hb <= 0 || hb > APIGatewayIdleTimeout/2 {
		add("tunnel.heartbeat_interval", "%s: want > 0 and at most %s (half the API Gateway idle timeout)", hb, APIGatewayIdleTimeout/2)
	}
	if age := t.MaxConnectionAge.D(); age <= 0 || age >= APIGatewayMaxAge {
		add("tunnel.max_connection_age", "%s: want > 0 and below the %s API Gateway limit", age, APIGatewayMaxAge)
	} else if hb := t.HeartbeatInterval.D(); hb > 0 && age <= hb {
		add("tunnel.max_connection_age", "%s: must exceed heartbeat_interval %s", age, hb)
	}
	if t.BackoffInitial.D() <= 0 {
		add("tunnel.backoff_initial", "must be > 0")
	}
	if t.BackoffMax.D() < t.BackoffInitial.D() {
		add("tunnel.backoff_max", "%s: must be >= backoff_initial %s", t.BackoffMax.D(), t.BackoffInitial.D())
	}
	if t.HandshakeTimeout.D() <= 0 {
		add("tunnel.handshake_timeout", "must be > 0")
	}

	if c.Audit.Path == "" {
		add("audit.path", "required")
	}
	if c.Metrics.Listen != "" {
		host, _, err := net.SplitHostPort(c.Metrics.Listen)
		if err != nil {
			add("metrics.listen", "%v", err)
		} else if !isLoopbackHost(host) {
			add("metrics.listen", "%q is not a loopback address (metrics stay on the host)", host)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
