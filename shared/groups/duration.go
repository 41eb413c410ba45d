package groups

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as a Go duration ("36h", "90m") or with
// a leading day count ("90d", "1d12h"). Bare numbers are rejected: a unit is
// always required.
type Duration time.Duration

var (
	_ yaml.Unmarshaler = (*Duration)(nil)
	_ yaml.Marshaler   = Duration(0)
	_ yaml.IsZeroer    = Duration(0)
)

const day = 24 * time.Hour

// ParseDuration parses a Go duration with an optional leading "<N>d" day count.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	neg := false
	body := s
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	var days time.Duration
	if i := strings.IndexByte(body, 'd'); i >= 0 {
		n, err := strconv.ParseUint(body[:i], 10, 32)
		if err != nil || i == 0 {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 90d, 36h, 1d12h)", s)
		}
		if n > uint64(math.MaxInt64/int64(day)) {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		days = time.Duration(n) * day
		body = body[i+1:]
	}
	var rest time.Duration
	if body != "" {
		if body[0] == '-' || body[0] == '+' {
			return 0, fmt.Errorf("invalid duration %q (want e.g. 90d, 36h, 1d12h)", s)
		}
		var err error
		rest, err = time.ParseDuration(body)
		if err != nil {
			if _, nerr := strconv.ParseFloat(body, 64); nerr == nil && days == 0 {
				return 0, fmt.Errorf("duration %q needs a unit (e.g. 300s, 5m, 90d)", s)
			}
			return 0, fmt.Errorf("invalid duration %q (want e.g. 90d, 36h, 1d12h)", s)
		}
	}
	if rest > math.MaxInt64-days {
		return 0, fmt.Errorf("duration %q is too large", s)
	}
	d := days + rest
	if neg {
		d = -d
	}
	return d, nil
}

// FormatDuration writes d as whole days ("90d") when it is a multiple of a
// day, otherwise as a Go duration.
func FormatDuration(d time.Duration) string {
	if d != 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats like FormatDuration.
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// IsZero reports whether the duration is unset.
func (d Duration) IsZero() bool { return d == 0 }

// MarshalYAML writes the canonical form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a scalar duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration (e.g. 90d, 36h), got %s", kindName(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Never is the material_expiration value for material that does not expire.
const Never = "never"

// Expiration is the material_expiration setting: "never" (ExpirationModel
// KEY_MATERIAL_DOES_NOT_EXPIRE) or how long imported material stays valid.
type Expiration struct {
	Never    bool
	ValidFor Duration
}

var (
	_ yaml.Unmarshaler = (*Expiration)(nil)
	_ yaml.Marshaler   = Expiration{}
	_ yaml.IsZeroer    = Expiration{}
)

// String returns "never" or the valid-for duration.
func (e Expiration) String() string {
	if e.Never {
		return Never
	}
	return e.ValidFor.String()
}

// IsZero reports whether the setting is unset.
func (e Expiration) IsZero() bool { return !e.Never && e.ValidFor == 0 }

// MarshalYAML writes "never" or the duration.
func (e Expiration) MarshalYAML() (any, error) { return e.String(), nil }

// UnmarshalYAML reads "never" or a duration.
func (e *Expiration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf(`want "never" or a duration (e.g. 90d), got %s`, kindName(n))
	}
	if strings.TrimSpace(n.Value) == Never {
		*e = Expiration{Never: true}
		return nil
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf(`want "never" or a duration: %w`, err)
	}
	*e = Expiration{ValidFor: Duration(v)}
	return nil
}
