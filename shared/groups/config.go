// Package groups is keyferry's key-group configuration: one declarative file
// (YAML, or JSON which is valid YAML) that lists the groups of KMS keys keyferry
// keeps rotated, the HSM pools whose agents wrap their material, and the
// control-plane settings. Parse and Load decode the file, apply defaults into
// the returned structs (nothing is defaulted invisibly) and validate every
// field, returning all problems at once as a *ValidationError.
package groups

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// CurrentVersion is the only configuration file version this package reads.
const CurrentVersion = 1

// GroupTagKey is the tag keyferry adds to every KMS key it creates; its value
// is the group name. Users may not set tags with the "keyferry:" prefix.
const GroupTagKey = "keyferry:group"

// DefaultSigningKeyAlias is the control-plane signing key alias used when the
// file does not name one.
const DefaultSigningKeyAlias = "alias/keyferry-control-plane"

// Built-in defaults, applied (visibly) into the returned Config.
const (
	DefaultTimezone          = "UTC"
	DefaultScheduleWindow    = "1h"               // Scheduler spreads each rotation over this much after its due time
	MaxScheduleWindow        = 1440 * time.Minute // Scheduler's MaximumWindowInMinutes bound
	DefaultRotationCap       = 25                 // KMS: at most 25 on-demand rotations per key (not adjustable)
	DefaultReimportMargin    = 7 * 24 * time.Hour
	DefaultAlarmCooldown     = time.Hour
	DefaultAlarmPeriod       = 5 * time.Minute
	DefaultEvaluationPeriods = 1
	MaxValidFor              = 365 * 24 * time.Hour
)

// Mode is how a group rotates.
type Mode string

// Rotation modes.
const (
	// ModeAliasSwap creates a new KMS key per rotation and moves the alias.
	ModeAliasSwap Mode = "alias-swap"
	// ModeInPlace imports new material into the same key (RotateKeyOnDemand).
	ModeInPlace Mode = "in-place"
	// ModeHybrid rotates in place until the on-demand rotation cap, then swaps.
	ModeHybrid Mode = "hybrid"
)

// Modes lists the rotation modes.
func Modes() []Mode { return []Mode{ModeAliasSwap, ModeInPlace, ModeHybrid} }

// UsesRotationCap reports whether the mode rotates in place (and so counts
// on-demand rotations against the cap).
func (m Mode) UsesRotationCap() bool { return m == ModeInPlace || m == ModeHybrid }

// CreatesKeys reports whether the mode creates new KMS keys (and so has a
// previous key to keep or disable).
func (m Mode) CreatesKeys() bool { return m == ModeAliasSwap || m == ModeHybrid }

// PreviousKey says what happens to the previous KMS key after an alias swap.
type PreviousKey string

// Previous-key policies.
const (
	PreviousKeep    PreviousKey = "keep"
	PreviousDisable PreviousKey = "disable"
)

// Auto is the value of a wrapping field that lets keyferry choose.
const Auto = "auto"

// Config is one parsed and validated key-group file.
type Config struct {
	Version int `yaml:"version"`
	// Defaults holds the group fields as written under "defaults:"; they are
	// already applied into every Group.
	Defaults     Group        `yaml:"defaults,omitempty"`
	HSMPools     []HSMPool    `yaml:"hsm_pools,omitempty"`
	ControlPlane ControlPlane `yaml:"control_plane"`
	Groups       []Group      `yaml:"groups"`
}

// ControlPlane holds settings of the AWS side.
type ControlPlane struct {
	// SigningKeyAlias names the KMS asymmetric key that signs wrap requests.
	SigningKeyAlias string `yaml:"signing_key_alias,omitempty"`
}

// HSMPool is one logical HSM: every agent of a pool reaches the same key
// store (an HA group or cluster whose members share keys: a Luna HA group, a
// CloudHSM cluster, a Futurex cluster, or one token that several agent hosts
// open), so any agent of the pool can rewrap any key the pool generated, and
// a key that one agent generated exists for all of them. Agents of one pool
// may differ in capabilities (a newer firmware can do more key specs): the
// engine sends a job only to a live agent of the group's pool whose hello
// says it can do the job's key spec and wrapping, and among those to the one
// with the fewest outstanding wrap requests (functions/engine/pool.go).
type HSMPool struct {
	Name   string  `yaml:"name,omitempty"`
	Agents []Agent `yaml:"agents,omitempty"`
}

// Agent is one registered keyferry-agent identity.
type Agent struct {
	ID string `yaml:"id,omitempty"`
	// PublicKey is the PEM SPKI of the agent identity key (EC P-256); empty
	// until the agent is registered.
	PublicKey string `yaml:"public_key,omitempty"`
}

// Group is one set of KMS keys rotated together with the same settings.
type Group struct {
	Name             string            `yaml:"name,omitempty"`
	KeySpec          keyspec.Spec      `yaml:"key_spec,omitempty"`
	KeyUsage         keyspec.Usage     `yaml:"key_usage,omitempty"`
	Mode             Mode              `yaml:"mode,omitempty"`
	Schedule         string            `yaml:"schedule,omitempty"`
	ScheduleTimezone string            `yaml:"schedule_timezone,omitempty"`
	ScheduleWindow   string            `yaml:"schedule_window,omitempty"` // "off" or 1m-24h (ParseScheduleWindow)
	Alias            string            `yaml:"alias,omitempty"`
	Description      string            `yaml:"description,omitempty"`
	UserTags         map[string]string `yaml:"tags,omitempty"`
	PolicyFile       string            `yaml:"policy_file,omitempty"`
	Account          string            `yaml:"account,omitempty"`
	Region           string            `yaml:"region,omitempty"`
	// Replicas are the other Regions of the account that hold a replica of
	// the group's multi-Region key (replicas.go); empty for single-Region.
	Replicas           []string    `yaml:"replicas,omitempty"`
	MaterialExpiration Expiration  `yaml:"material_expiration,omitempty"`
	ReimportMargin     Duration    `yaml:"reimport_margin,omitempty"`
	PreviousKey        PreviousKey `yaml:"previous_key,omitempty"`
	HSMPool            string      `yaml:"hsm_pool,omitempty"`
	Wrapping           Wrapping    `yaml:"wrapping,omitempty"`
	RotationCap        int         `yaml:"rotation_cap,omitempty"`
	// Alarms has no omitempty: an explicit empty list in a group overrides
	// alarms inherited from defaults, and must survive a marshal round trip.
	Alarms []Alarm `yaml:"alarms"`

	// PolicyPath is PolicyFile resolved against the config file's directory
	// (set by Load only).
	PolicyPath string `yaml:"-"`
	// Policy is the key policy document read from PolicyPath (Load only).
	Policy json.RawMessage `yaml:"-"`
}

// Wrapping pins the import wrapping algorithm and wrapping key spec, or leaves
// either to keyferry ("auto").
type Wrapping struct {
	Algorithm keyspec.WrappingAlgorithm `yaml:"algorithm,omitempty"`
	KeySpec   keyspec.WrappingKeySpec   `yaml:"key_spec,omitempty"`
}

// AlarmType is the kind of CloudWatch alarm.
type AlarmType string

// Alarm types.
const (
	AlarmThreshold AlarmType = "threshold"
	AlarmAnomaly   AlarmType = "anomaly"
)

// Alarm is a CloudWatch alarm on AWS/KMS SuccessfulRequest for one KMS
// operation of the group's current key; when it fires the group rotates.
type Alarm struct {
	Name      string    `yaml:"name,omitempty"`
	Operation string    `yaml:"operation,omitempty"`
	Type      AlarmType `yaml:"type,omitempty"`
	Threshold float64   `yaml:"threshold,omitempty"`
	// Comparison is a CloudWatch ComparisonOperator.
	Comparison        string   `yaml:"comparison,omitempty"`
	BandWidth         float64  `yaml:"band_width,omitempty"`
	Period            Duration `yaml:"period,omitempty"`
	EvaluationPeriods int      `yaml:"evaluation_periods,omitempty"`
	// Cooldown is the minimum time between rotations of the group triggered
	// by this alarm.
	Cooldown Duration `yaml:"cooldown,omitempty"`
}

// Group returns the group with the given name.
func (c *Config) Group(name string) (*Group, bool) {
	for i := range c.Groups {
		if c.Groups[i].Name == name {
			return &c.Groups[i], true
		}
	}
	return nil, false
}

// Pool returns the HSM pool with the given name.
func (c *Config) Pool(name string) (*HSMPool, bool) {
	for i := range c.HSMPools {
		if c.HSMPools[i].Name == name {
			return &c.HSMPools[i], true
		}
	}
	return nil, false
}

// Target is one AWS account and region that holds keyferry keys.
type Target struct {
	Account string
	Region  string
}

// Targets returns the distinct account-region pairs of all groups, sorted.
func (c *Config) Targets() []Target {
	seen := map[Target]bool{}
	var out []Target
	for _, g := range c.Groups {
		t := Target{Account: g.Account, Region: g.Region}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Account != out[b].Account {
			return out[a].Account < out[b].Account
		}
		return out[a].Region < out[b].Region
	})
	return out
}

// MaterialExpires reports whether imported material gets a ValidTo
// (ExpirationModel KEY_MATERIAL_EXPIRES).
func (g *Group) MaterialExpires() bool { return !g.MaterialExpiration.Never }

// ValidFor is how long imported material stays valid; 0 when it never expires.
func (g *Group) ValidFor() time.Duration {
	if g.MaterialExpiration.Never {
		return 0
	}
	return g.MaterialExpiration.ValidFor.Std()
}

// Info returns the key-spec table row of the group's key spec (zero Info if
// the spec is not importable, which a validated Config never has).
func (g *Group) Info() keyspec.Info {
	i, _ := keyspec.Lookup(g.KeySpec)
	return i
}

// Tags returns the tags every KMS key of the group carries: the user's tags
// plus GroupTagKey set to the group name.
func (g *Group) Tags() map[string]string {
	out := make(map[string]string, len(g.UserTags)+1)
	for k, v := range g.UserTags {
		out[k] = v
	}
	out[GroupTagKey] = g.Name
	return out
}
