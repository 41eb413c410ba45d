package sandbox

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/cfntemplate"
	"github.com/keyferry/keyferry/test/iamsim"
)

// GatewayStage is the websocket API's stage: the template's, so the
// execute-api ARNs its policies name are the ones the gateway checks.
const GatewayStage = "prod"

// iamState is IAM from the template (FunctionsRIE): the evaluator, a gate
// in front of KMS, DynamoDB and SQS, and who is who.
type iamState struct {
	eval       *iamsim.Evaluator
	gates      []*iamsim.Gate
	ledger     *iamsim.Ledger
	principals []*iamsim.Principal
	byRole     map[string]*iamsim.Principal // role logical id
	byKey      map[string]*iamsim.Principal
	kms, ddb   string // the gates' URLs
	sqs        string
}

// IAMLedger is every authorization decision so far (nil unless the
// functions run under FunctionsRIE with IAM).
func (s *Sandbox) IAMLedger() *iamsim.Ledger {
	if s.iam == nil {
		return nil
	}
	return s.iam.ledger
}

// IAMPrincipals lists the principals the template defines (roles, the
// agent, the operator) with their policies.
func (s *Sandbox) IAMPrincipals() []*iamsim.Principal {
	if s.iam == nil {
		return nil
	}
	return s.iam.principals
}

// startIAM reads every principal's policies from the template, checks that
// IAM defines every action they name, and puts a gate in front of each
// service the functions call. PolicyEdit, when set, may change the
// template's policies first (tests that break one on purpose).
func (s *Sandbox) startIAM(ctx context.Context, root string, res *cfntemplate.Resolver) error {
	if st := s.Template.OfType("AWS::ApiGatewayV2::Stage"); len(st) != 1 || st[0].Properties["StageName"] != GatewayStage {
		return fmt.Errorf("sandbox: template %s: want one websocket stage named %q (the gateway's)", s.Template.Path, GatewayStage)
	}
	if s.PolicyEdit != nil {
		if err := s.PolicyEdit(s.Template); err != nil {
			return fmt.Errorf("sandbox: policy edit: %w", err)
		}
	}
	eval, err := iamsim.Start(ctx, root)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	st := &iamState{eval: eval, ledger: &iamsim.Ledger{}, byRole: map[string]*iamsim.Principal{}, byKey: map[string]*iamsim.Principal{}}
	s.iam = st
	if st.principals, err = iamsim.RolePrincipals(s.Template, res, Account); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for _, m := range []struct{ prefix, user, key string }{{"AgentPolicy", "keyferry-agent", AgentAccessKey}, {"OperatorPolicy", "keyferry-operator", OperatorAccessKey}} {
		id, err := iamsim.ManagedPolicyByPrefix(s.Template, m.prefix)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		p, err := iamsim.ManagedPolicyPrincipal(s.Template, res, Account, id, m.user)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if m.key != "" {
			p.AccessKey = m.key
		}
		st.principals = append(st.principals, p)
	}
	var actions []string
	for _, p := range st.principals {
		st.byRole[p.Name] = p
		st.byKey[p.AccessKey] = p
		actions = append(actions, p.Actions()...)
		s.gatewayCreds[p.AccessKey] = apigwemu.Credential{SecretAccessKey: CloudSecretKey, PrincipalARN: p.ARN}
	}
	unknown, err := eval.UnknownActions(ctx, actions)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("sandbox: template %s grants actions IAM does not define: %s", s.Template.Path, strings.Join(unknown, ", "))
	}
	gate := func(service, target string, c iamsim.Classifier) (string, error) {
		g, err := iamsim.StartGate(iamsim.GateOptions{Service: service, Target: target, Evaluator: eval, Classifier: c, Principals: st.principals,
			Admin: []string{CloudAccessKey}, Ledger: st.ledger, Account: Account, Log: s.Log.With("component", "iam-"+service)})
		if err != nil {
			return "", err
		}
		st.gates = append(st.gates, g)
		return g.URL(), nil
	}
	if s.Emulator == nil {
		return fmt.Errorf("sandbox: IAM from the template needs the KMS emulator (an external KMS endpoint authorizes by itself)")
	}
	if st.kms, err = gate("kms", s.Endpoints.KMS, &iamsim.KMS{Region: Region, Account: Account, Keys: s.Emulator.KeyFacts}); err != nil {
		return err
	}
	if st.ddb, err = gate("dynamodb", s.Endpoints.DynamoDB, &iamsim.DynamoDB{Region: Region, Account: Account}); err != nil {
		return err
	}
	if st.sqs, err = gate("sqs", s.motoSvc.URL(), &iamsim.SQS{Region: Region, Account: Account}); err != nil {
		return err
	}
	return nil
}

// authorize is IAM's decision for a call the KMS, DynamoDB and SQS gates do
// not see: the websocket API's ($connect for the agent, @connections for
// the functions) and the Lambda Invoke API's (the operator CLI,
// Scheduler's execution roles). The sandbox's own admin key is allowed.
func (s *Sandbox) authorize(ctx context.Context, accessKey, action, resource string) error {
	st := s.iam
	if st == nil || accessKey == CloudAccessKey {
		return nil
	}
	p := st.byKey[accessKey]
	if p == nil {
		st.ledger.Record(iamsim.Record{Principal: "unknown:" + accessKey, Action: action, Resource: resource, Decision: "UnknownAccessKey"})
		return fmt.Errorf("unknown access key %s", accessKey)
	}
	d, err := st.eval.Evaluate(ctx, iamsim.Request{Principal: p.ARN, Action: action, Resource: resource, AccountID: Account, IdentityPolicies: p.Policies})
	rec := iamsim.Record{Principal: p.Name, Action: action, Resource: resource, Decision: string(d)}
	if err != nil {
		rec.Decision, rec.Error = "Error", err.Error()
	}
	st.ledger.Record(rec)
	if err != nil {
		return err
	}
	if d != iamsim.Allowed {
		return fmt.Errorf("User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", p.ARN, action, resource, action)
	}
	return nil
}

// roleCredentials gives a function's instances the access key of their
// execution role.
func (s *Sandbox) roleCredentials(fn, role string) (string, string) {
	if s.iam != nil {
		if p := s.iam.byRole[role]; p != nil {
			return p.AccessKey, CloudSecretKey
		}
	}
	return CloudAccessKey, CloudSecretKey
}

func (st *iamState) close() {
	if st == nil {
		return
	}
	for _, g := range st.gates {
		g.Close()
	}
	st.eval.Close()
}

// agentDenials says which of the agent's calls IAM denied, for the error
// of an agent that never connected ("" when none).
func (s *Sandbox) agentDenials() string {
	if s.iam == nil {
		return ""
	}
	for _, d := range s.iam.ledger.Denied() {
		if p := s.iam.byKey[AgentAccessKey]; p != nil && d.Principal == p.Name {
			return fmt.Sprintf(": IAM denied %s %s on %s (%s)", p.ARN, d.Action, d.Resource, d.Decision)
		}
	}
	return ""
}
