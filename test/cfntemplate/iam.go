package cfntemplate

import (
	"fmt"
	"sort"
)

// Statement is one IAM policy statement as written (values may be
// intrinsics; resolve them with a Resolver).
type Statement struct {
	Sid          string
	Effect       string
	Action       any
	NotAction    any
	Resource     any
	NotResource  any
	Principal    any
	NotPrincipal any
	Condition    map[string]any
}

// PolicyDocument is a policy of a role: where it comes from and its statements.
type PolicyDocument struct {
	// Source is the logical id of the AWS::IAM::Policy or
	// AWS::IAM::ManagedPolicy, or "<role>/<PolicyName>" for an inline
	// policy of the role, or the managed policy ARN as written for an AWS
	// managed policy (whose statements the template does not hold:
	// Statements is empty and AWSManaged is true).
	Source     string
	Kind       string // TypePolicy, TypeManagedPolicy, "inline" or "aws-managed"
	AWSManaged bool
	ARN        any // for aws-managed: the ManagedPolicyArns entry
	Statements []Statement
}

// Role is the typed view of an AWS::IAM::Role.
type Role struct {
	LogicalID        string
	AssumeRolePolicy []Statement
	// ManagedPolicyArns as written (Refs to ManagedPolicy resources, or
	// AWS managed policy ARNs).
	ManagedPolicyArns []any
	Resource          *Resource
}

// Roles lists every role, sorted by logical id.
func (t *Template) Roles() []Role {
	var out []Role
	for _, r := range t.OfType(TypeRole) {
		out = append(out, t.role(r))
	}
	return out
}

// Role returns one role by logical id.
func (t *Template) Role(logicalID string) (Role, error) {
	r, ok := t.Resources[logicalID]
	if !ok || r.Type != TypeRole {
		return Role{}, fmt.Errorf("cfntemplate: role %q not in template %s", logicalID, t.Path)
	}
	return t.role(r), nil
}

func (t *Template) role(r *Resource) Role {
	arp, _ := r.Properties["AssumeRolePolicyDocument"].(map[string]any)
	return Role{LogicalID: r.LogicalID, AssumeRolePolicy: statements(arp), ManagedPolicyArns: list(r.Properties["ManagedPolicyArns"]), Resource: r}
}

// statements decodes a policy document's Statement (an object or a list).
func statements(doc map[string]any) []Statement {
	var out []Statement
	for _, s := range list(doc["Statement"]) {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		cond, _ := m["Condition"].(map[string]any)
		out = append(out, Statement{
			Sid: str(m["Sid"]), Effect: str(m["Effect"]), Action: m["Action"], NotAction: m["NotAction"],
			Resource: m["Resource"], NotResource: m["NotResource"], Principal: m["Principal"], NotPrincipal: m["NotPrincipal"], Condition: cond,
		})
	}
	return out
}

// Statements decodes a policy document (e.g. a KMS key policy property).
func Statements(doc any) []Statement {
	m, _ := doc.(map[string]any)
	return statements(m)
}

// RolePolicies returns every policy that applies to a role: its inline
// Policies, each AWS::IAM::Policy and AWS::IAM::ManagedPolicy naming it in
// Roles, each ManagedPolicy its ManagedPolicyArns reference, and AWS
// managed policies by ARN (without statements).
func (t *Template) RolePolicies(roleLogicalID string) ([]PolicyDocument, error) {
	role, err := t.Role(roleLogicalID)
	if err != nil {
		return nil, err
	}
	var out []PolicyDocument
	for _, p := range list(role.Resource.Properties["Policies"]) {
		m, _ := p.(map[string]any)
		doc, _ := m["PolicyDocument"].(map[string]any)
		out = append(out, PolicyDocument{Source: roleLogicalID + "/" + str(m["PolicyName"]), Kind: "inline", Statements: statements(doc)})
	}
	names := func(v any) bool {
		for _, e := range list(v) {
			if refTarget(e) == roleLogicalID {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	for _, typ := range []string{TypePolicy, TypeManagedPolicy} {
		for _, r := range t.OfType(typ) {
			if names(r.Properties["Roles"]) {
				doc, _ := r.Properties["PolicyDocument"].(map[string]any)
				out = append(out, PolicyDocument{Source: r.LogicalID, Kind: typ, Statements: statements(doc)})
				seen[r.LogicalID] = true
			}
		}
	}
	for _, a := range role.ManagedPolicyArns {
		if id := refTarget(a); id != "" {
			if r, ok := t.Resources[id]; ok && r.Type == TypeManagedPolicy {
				if !seen[id] {
					doc, _ := r.Properties["PolicyDocument"].(map[string]any)
					out = append(out, PolicyDocument{Source: id, Kind: TypeManagedPolicy, Statements: statements(doc)})
					seen[id] = true
				}
				continue
			}
		}
		out = append(out, PolicyDocument{Source: fmt.Sprint(a), Kind: "aws-managed", AWSManaged: true, ARN: a})
	}
	return out, nil
}

// ManagedPolicies lists the template's AWS::IAM::ManagedPolicy resources
// (the agent and operator policies attach to principals outside the
// template), sorted by logical id.
func (t *Template) ManagedPolicies() []PolicyDocument {
	var out []PolicyDocument
	for _, r := range t.OfType(TypeManagedPolicy) {
		doc, _ := r.Properties["PolicyDocument"].(map[string]any)
		out = append(out, PolicyDocument{Source: r.LogicalID, Kind: TypeManagedPolicy, Statements: statements(doc)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}
