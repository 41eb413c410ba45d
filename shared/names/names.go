// Package names holds the one definition of every identifier rule keyferry
// shares between the on-premises agent and the control plane: key group,
// HSM pool and alarm names, agent ids, AWS regions and account ids. The
// agent's configuration, the key-group file validator and the control
// plane's $connect and hello checks all call these functions, so a name the
// agent accepts is a name the control plane accepts, and the other way round.
//
// Each Check function returns nil or an error that names the value and the
// rule it breaks.
package names

import (
	"errors"
	"fmt"
	"regexp"
)

var (
	labelRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	agentRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+){1,3}-[0-9]{1,2}$`)
)

// ErrRequired: the identifier is empty.
var ErrRequired = errors.New("required")

// checkLabel validates a DNS label: lower-case letters, digits and hyphens,
// 1-63 characters, no leading or trailing hyphen.
func checkLabel(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s: %w", what, ErrRequired)
	}
	if !labelRe.MatchString(s) {
		return fmt.Errorf("%s %q is not a DNS label (a-z, 0-9, -, 1-63 characters, no leading or trailing -)", what, s)
	}
	return nil
}

// CheckGroup validates a key group name.
func CheckGroup(s string) error { return checkLabel("group name", s) }

// CheckPool validates an HSM pool name (the agent's hsm_pool, the key-group
// file's hsm_pools[].name, the pool an agent names at $connect and in hello).
func CheckPool(s string) error { return checkLabel("pool name", s) }

// CheckAlarm validates an alarm name of a key group.
func CheckAlarm(s string) error { return checkLabel("alarm name", s) }

// CheckAgentID validates an agent id: 1-64 characters of A-Z a-z 0-9 . _ -,
// starting with a letter or digit.
func CheckAgentID(s string) error {
	if s == "" {
		return fmt.Errorf("agent id: %w", ErrRequired)
	}
	if !agentRe.MatchString(s) {
		return fmt.Errorf("agent id %q: want 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit", s)
	}
	return nil
}

// CheckAccount validates a 12-digit AWS account id.
func CheckAccount(s string) error {
	if s == "" {
		return fmt.Errorf("account: %w (12-digit AWS account ID)", ErrRequired)
	}
	if !accountRe.MatchString(s) {
		return fmt.Errorf("account %q is not a 12-digit AWS account ID", s)
	}
	return nil
}

// CheckRegion validates AWS region syntax (us-east-1, us-gov-west-1,
// us-isob-east-1, eusc-de-east-1, ...).
func CheckRegion(s string) error {
	if s == "" {
		return fmt.Errorf("region: %w (e.g. us-east-1)", ErrRequired)
	}
	if !regionRe.MatchString(s) {
		return fmt.Errorf("region %q is not an AWS region (e.g. us-east-1)", s)
	}
	return nil
}
