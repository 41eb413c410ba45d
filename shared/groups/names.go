package groups

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // schedule_timezone validates the same on Lambda, agent and CI
	"unicode"
	"unicode/utf8"
)

// Group, pool, alarm and agent names, accounts and regions follow the rules
// of shared/names (the agent and the control plane use the same ones).

var aliasRe = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)

// CheckAlias validates a KMS alias name that keyferry may create.
func CheckAlias(s string) error {
	switch {
	case s == "":
		return errors.New("required (alias/...)")
	case !strings.HasPrefix(s, "alias/"):
		return fmt.Errorf("%q must start with alias/", s)
	case strings.HasPrefix(s, "alias/aws/"):
		return fmt.Errorf("%q: alias/aws/ is reserved for AWS managed keys", s)
	case len(s) > 256:
		return fmt.Errorf("alias is %d characters, KMS allows 256", len(s))
	case !aliasRe.MatchString(s):
		return fmt.Errorf("%q: after alias/ only a-z A-Z 0-9 / _ - are allowed (and at least one)", s)
	}
	return nil
}

// CheckTimezone validates an IANA time zone name.
func CheckTimezone(s string) error {
	if s == "" || s == "Local" {
		return fmt.Errorf("%q is not an IANA time zone name (e.g. UTC, Europe/Paris)", s)
	}
	if _, err := time.LoadLocation(s); err != nil {
		return fmt.Errorf("%q is not an IANA time zone name (e.g. UTC, Europe/Paris)", s)
	}
	return nil
}

// maxUserTags leaves room for GroupTagKey under KMS's 50 tags per key.
const maxUserTags = 49

// tagProblems validates user tags against KMS tag rules and keyferry's
// reserved prefix; it returns one message per offending key.
func tagProblems(tags map[string]string) map[string][]string {
	out := map[string][]string{}
	add := func(k, format string, args ...any) { out[k] = append(out[k], fmt.Sprintf(format, args...)) }
	for k, v := range tags {
		n := utf8.RuneCountInString(k)
		switch {
		case n < 1 || n > 128:
			add(k, "tag key must be 1-128 characters, got %d", n)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			add(k, "tag keys starting with aws: are reserved by AWS")
		case strings.EqualFold(k, GroupTagKey):
			add(k, "%s is set by keyferry (to the group name) and cannot be set here", GroupTagKey)
		case strings.HasPrefix(strings.ToLower(k), "keyferry:"):
			add(k, "tag keys starting with keyferry: are reserved for keyferry")
		case !printable(k):
			add(k, "tag key contains control characters or invalid UTF-8")
		}
		if m := utf8.RuneCountInString(v); m > 256 {
			add(k, "tag value must be 0-256 characters, got %d", m)
		} else if !printable(v) {
			add(k, "tag value contains control characters or invalid UTF-8")
		}
	}
	return out
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ParseAgentPublicKey parses a PEM "PUBLIC KEY" block holding an EC P-256
// SubjectPublicKeyInfo (an agent identity key).
func ParseAgentPublicKey(pemText string) (*ecdsa.PublicKey, error) {
	errNot := errors.New("not a PEM EC P-256 public key")
	block, rest := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w (want a -----BEGIN PUBLIC KEY----- block)", errNot)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%w (extra data after the PEM block)", errNot)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNot, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w (got %T)", errNot, pub)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w (got curve %s)", errNot, ec.Curve.Params().Name)
	}
	return ec, nil
}

// PublicKeyEC returns the agent's parsed identity key (nil if not registered).
func (a *Agent) PublicKeyEC() (*ecdsa.PublicKey, error) {
	if a.PublicKey == "" {
		return nil, nil
	}
	return ParseAgentPublicKey(a.PublicKey)
}
