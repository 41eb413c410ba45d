package iamsim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// Principal is one caller: a function's execution role, or a managed
// policy's holder (the agent, the operator), with the identity policies
// the template gives it, intrinsics resolved.
type Principal struct {
	// Name is the role's or managed policy's logical id.
	Name string
	// ARN is the principal as IAM sees it.
	ARN string
	// AccessKey identifies it on signed requests (AccessKeyFor(Name)).
	AccessKey string
	Policies  []Policy
	// Grants lists every action pattern the policies allow, with the
	// resources, for the least-privilege report.
	Grants []Grant
}

// Grant is one allowed action pattern of a statement.
type Grant struct {
	Action    string
	Resources []string
	Source    string
}

// AccessKeyFor derives the sandbox access key id of a principal: "AKIA"
// and 16 upper-case hex digits of the name's SHA-256 (20 characters, like
// AWS's).
func AccessKeyFor(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "AKIA" + strings.ToUpper(fmt.Sprintf("%x", sum[:8]))
}

// RolePrincipals returns a Principal for every role of the template, its
// policies resolved with r. AWS managed policies (the Lambda basic
// execution role's CloudWatch Logs grants) are left out: the sandbox calls
// no CloudWatch Logs API.
func RolePrincipals(t *cfntemplate.Template, r *cfntemplate.Resolver, account string) ([]*Principal, error) {
	var out []*Principal
	for _, role := range t.Roles() {
		docs, err := t.RolePolicies(role.LogicalID)
		if err != nil {
			return nil, err
		}
		p := &Principal{Name: role.LogicalID, ARN: "arn:aws:iam::" + account + ":role/" + role.LogicalID, AccessKey: AccessKeyFor(role.LogicalID)}
		for _, d := range docs {
			if d.AWSManaged {
				continue
			}
			if err := p.add(d, r); err != nil {
				return nil, fmt.Errorf("iamsim: role %s: %w", role.LogicalID, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// ManagedPolicyPrincipal returns the holder of the template's managed
// policy logicalID (e.g. the agent's or the operator's), as IAM user name.
func ManagedPolicyPrincipal(t *cfntemplate.Template, r *cfntemplate.Resolver, account, logicalID, user string) (*Principal, error) {
	for _, d := range t.ManagedPolicies() {
		if d.Source != logicalID {
			continue
		}
		p := &Principal{Name: logicalID, ARN: "arn:aws:iam::" + account + ":user/" + user, AccessKey: AccessKeyFor(logicalID)}
		if err := p.add(d, r); err != nil {
			return nil, fmt.Errorf("iamsim: managed policy %s: %w", logicalID, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("iamsim: managed policy %q not in template %s", logicalID, t.Path)
}

// ManagedPolicyByPrefix finds the managed policy whose logical id starts
// with prefix (CDK appends a hash).
func ManagedPolicyByPrefix(t *cfntemplate.Template, prefix string) (string, error) {
	var ids []string
	for _, d := range t.ManagedPolicies() {
		if strings.HasPrefix(d.Source, prefix) {
			ids = append(ids, d.Source)
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("iamsim: want one managed policy named %s* in %s, have %v", prefix, t.Path, ids)
	}
	return ids[0], nil
}

func (p *Principal) add(d cfntemplate.PolicyDocument, r *cfntemplate.Resolver) error {
	var stmts []map[string]any
	for i, st := range d.Statements {
		m := map[string]any{"Effect": st.Effect}
		if st.Sid != "" {
			m["Sid"] = st.Sid
		}
		for k, v := range map[string]any{"Action": st.Action, "NotAction": st.NotAction, "Resource": st.Resource, "NotResource": st.NotResource} {
			if v == nil {
				continue
			}
			rv, err := r.Resolve(v)
			if err != nil {
				return fmt.Errorf("%s statement %d %s: %w", d.Source, i, k, err)
			}
			m[k] = rv
		}
		if st.Condition != nil {
			rv, err := r.Resolve(map[string]any(st.Condition))
			if err != nil {
				return fmt.Errorf("%s statement %d Condition: %w", d.Source, i, err)
			}
			m["Condition"] = rv
		}
		stmts = append(stmts, m)
		if st.Effect == "Allow" {
			res := stringsOf(m["Resource"])
			for _, a := range stringsOf(m["Action"]) {
				p.Grants = append(p.Grants, Grant{Action: a, Resources: res, Source: d.Source})
			}
		}
	}
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": stmts})
	if err != nil {
		return err
	}
	p.Policies = append(p.Policies, Policy{Name: d.Source, Policy: b})
	return nil
}

// Actions lists every action pattern the principal's policies name.
func (p *Principal) Actions() []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range p.Grants {
		if !seen[g.Action] {
			seen[g.Action] = true
			out = append(out, g.Action)
		}
	}
	sort.Strings(out)
	return out
}

func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
