// Package config loads and validates the keyferry-agent YAML configuration.
// Parse is strict (unknown keys are errors) and Validate reports every
// problem at once, each with its YAML path, so an operator fixes the file in
// one pass. The HSM PIN never lives in the file: it comes from a file
// (pin_file) or an environment variable (pin_env).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// MaxConfigBytes bounds the configuration file.
const MaxConfigBytes = 1 << 20

// Config is the agent configuration.
type Config struct {
	AgentID string `yaml:"agent_id"`
	// HSMPool names the HSM pool this agent serves (sent in hello);
	// default: the token label or serial.
	HSMPool      string       `yaml:"hsm_pool"`
	Endpoint     string       `yaml:"endpoint"` // API Gateway stage URL (https://...; presigned, then wss)
	Region       string       `yaml:"region"`   // region of the API Gateway (SigV4 scope)
	StateDir     string       `yaml:"state_dir"`
	LogLevel     string       `yaml:"log_level"`
	HSM          HSM          `yaml:"hsm"`
	ControlPlane ControlPlane `yaml:"control_plane"`
	Policy       Policy       `yaml:"policy"`
	Tunnel       Tunnel       `yaml:"tunnel"`
	Audit        Audit        `yaml:"audit"`
	Metrics      Metrics      `yaml:"metrics"`
}

// HSM selects the PKCS#11 module, token and login.
type HSM struct {
	Module        string `yaml:"module"`
	TokenLabel    string `yaml:"token_label"`
	TokenSerial   string `yaml:"token_serial"`
	PINFile       string `yaml:"pin_file"`
	PINEnv        string `yaml:"pin_env"`
	PoolSize      int    `yaml:"pool_size"`
	IdentityLabel string `yaml:"identity_label"`
	// InitArgs is passed to C_Initialize as its reserved argument, for
	// modules configured that way (NSS softoken: "configdir='sql:DIR' ...").
	InitArgs string `yaml:"init_args"`
}

// ControlPlane pins the control-plane signing key.
type ControlPlane struct {
	PublicKeyFile string   `yaml:"public_key_file"` // PEM "PUBLIC KEY" (ECDSA P-256, from KMS GetPublicKey)
	ClockSkew     Duration `yaml:"clock_skew"`
}

// Policy is the local allow-list applied before any HSM call.
type Policy struct {
	Accounts []string `yaml:"accounts"`
	Regions  []string `yaml:"regions"`
	// Groups defaults to ["*"] (any group) when the key is absent.
	Groups []string `yaml:"groups"`
	// KeySpecs defaults to every importable key spec when the key is absent.
	KeySpecs           []string `yaml:"key_specs"`
	MinWrappingKeyBits int      `yaml:"min_wrapping_key_bits"`
	GlobalRate         Rate     `yaml:"global_rate"`
	GroupRate          Rate     `yaml:"group_rate"`
	ReplayCacheSize    int      `yaml:"replay_cache_size"`
}

// Rate is a token bucket: PerMinute sustained, Burst at once.
type Rate struct {
	PerMinute float64 `yaml:"per_minute"`
	Burst     int     `yaml:"burst"`
}

// Tunnel tunes the outbound websocket.
type Tunnel struct {
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	MaxConnectionAge  Duration `yaml:"max_connection_age"`
	BackoffInitial    Duration `yaml:"backoff_initial"`
	BackoffMax        Duration `yaml:"backoff_max"`
	HandshakeTimeout  Duration `yaml:"handshake_timeout"`
}

// Audit configures the local audit log.
type Audit struct {
	Path string `yaml:"path"`
	Sign bool   `yaml:"sign"` // sign each record with the agent identity key
}

// Metrics configures the loopback /metrics and /healthz listener.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Duration is a time.Duration written as "30s", "4m", "1h50m" in YAML.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"30s\": %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Limits the daemon relies on (API Gateway WebSocket, not adjustable).
const (
	APIGatewayIdleTimeout = 10 * time.Minute
	APIGatewayMaxAge      = 2 * time.Hour
)

// Defaults returns a Config with every default filled in.
func Defaults() Config {
	return Config{
		StateDir: "/var/lib/keyferry",
		LogLevel: "info",
		HSM:      HSM{PoolSize: 4, IdentityLabel: "kf-agent-identity"},
		ControlPlane: ControlPlane{
			ClockSkew: Duration(2 * time.Minute),
		},
		Policy: Policy{
			MinWrappingKeyBits: 3072,
			GlobalRate:         Rate{PerMinute: 60, Burst: 10},
			GroupRate:          Rate{PerMinute: 10, Burst: 3},
			ReplayCacheSize:    100000,
		},
		Tunnel: Tunnel{
			HeartbeatInterval: Duration(4 * time.Minute),
			MaxConnectionAge:  Duration(110 * time.Minute),
			BackoffInitial:    Duration(time.Second),
			BackoffMax:        Duration(2 * time.Minute),
			HandshakeTimeout:  Duration(15 * time.Second),
		},
		Audit:   Audit{Path: "/var/lib/keyferry/audit.jsonl", Sign: true},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
	}
}

// Parse strictly decodes YAML over the defaults (unknown keys, several
// documents and type errors are refused). It does not Validate.
func Parse(data []byte) (*Config, error) {
	if len(data) > MaxConfigBytes {
		return nil, fmt.Errorf("config: %d bytes, limit %d", len(data), MaxConfigBytes)
	}
	c := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: empty file")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	// Absent (nil) lists get their defaults; an explicit empty list stays
	// empty and fails validation.
	if c.Policy.Groups == nil {
		c.Policy.Groups = []string{"*"}
	}
	if c.Policy.KeySpecs == nil {
		for _, s := range keyspec.All() {
			c.Policy.KeySpecs = append(c.Policy.KeySpecs, string(s))
		}
	}
	if c.HSMPool == "" {
		c.HSMPool = c.HSM.TokenLabel
		if c.HSMPool == "" {
			c.HSMPool = c.HSM.TokenSerial
		}
	}
	return &c, nil
}

// Load reads, parses and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ReadPIN returns the HSM user PIN from pin_file (trailing newline trimmed)
// or the pin_env environment variable. The PIN is never logged.
func (h HSM) ReadPIN() (string, error) {
	switch {
	case h.PINFile != "":
		b, err := os.ReadFile(h.PINFile)
		if err != nil {
			return "", fmt.Errorf("config: hsm.pin_file: %w", err)
		}
		pin := strings.TrimRight(string(b), "\r\n")
		if pin == "" {
			return "", errors.New("config: hsm.pin_file is empty")
		}
		return pin, nil
	case h.PINEnv != "":
		pin, ok := os.LookupEnv(h.PINEnv)
		if !ok || pin == "" {
			return "", fmt.Errorf("config: hsm.pin_env: environment variable %s is not set", h.PINEnv)
		}
		return pin, nil
	}
	return "", errors.New("config: hsm: set pin_file or pin_env")
}
