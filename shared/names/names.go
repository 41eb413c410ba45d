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

// rule is one identifier rule: what the value names, its pattern, what the
// pattern means in words, and an example for the empty case.
type rule struct {
	what    string
	re      *regexp.Regexp
	means   string
	example string
}

func (r rule) check(s string) error {
	if s == "" {
		return fmt.Errorf("%s: %w%s", r.what, ErrRequired, r.example)
	}
	if !r.re.MatchString(s) {
		return fmt.Errorf("%s %q %s", r.what, s, r.means)
	}
	return nil
}

const dnsLabel = "is not a DNS label (a-z, 0-9, -, 1-63 characters, no leading or trailing -)"

var (
	groupRule   = rule{"group name", labelRe, dnsLabel, ""}
	poolRule    = rule{"pool name", labelRe, dnsLabel, ""}
	alarmRule   = rule{"alarm name", labelRe, dnsLabel, ""}
	agentRule   = rule{"agent id", agentRe, "is not an agent id (1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit)", ""}
	accountRule = rule{"account", accountRe, "is not a 12-digit AWS account ID", " (12-digit AWS account ID)"}
	regionRule  = rule{"region", regionRe, "is not an AWS region (e.g. us-east-1)", " (e.g. us-east-1)"}
)

// CheckGroup validates a key group name.
func CheckGroup(s string) error { return groupRule.check(s) }

// CheckPool validates an HSM pool name (the agent's hsm_pool, the key-group
// file's hsm_pools[].name, the pool an agent names at $connect and in hello).
func CheckPool(s string) error { return poolRule.check(s) }

// CheckAlarm validates an alarm name of a key group.
func CheckAlarm(s string) error { return alarmRule.check(s) }

// CheckAgentID validates an agent id: 1-64 characters of A-Z a-z 0-9 . _ -,
// starting with a letter or digit.
func CheckAgentID(s string) error { return agentRule.check(s) }

// CheckAccount validates a 12-digit AWS account id.
func CheckAccount(s string) error { return accountRule.check(s) }

// CheckRegion validates AWS region syntax (us-east-1, us-gov-west-1,
// us-isob-east-1, eusc-de-east-1, ...).
func CheckRegion(s string) error { return regionRule.check(s) }
