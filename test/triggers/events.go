package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyferry/keyferry/test/cfntemplate"
)

// ErrPattern: an event pattern uses a form this matcher does not implement.
var ErrPattern = errors.New("triggers: unsupported event pattern")

// Match reports whether event (a JSON-decoded EventBridge event) matches
// pattern, for the subset of EventBridge's pattern language implemented:
// nested objects, arrays of exact values (strings, numbers, booleans,
// null), and the operators prefix, suffix, equals-ignore-case,
// anything-but (values or prefix) and exists. An operator outside it is
// ErrPattern (never a silent match or miss).
func Match(pattern, event map[string]any) (bool, error) {
	for k, pv := range pattern {
		ev, present := event[k]
		switch p := pv.(type) {
		case map[string]any:
			sub, ok := ev.(map[string]any)
			if !ok {
				// A nested pattern on an absent field can still match
				// through "exists": false only at leaves; here: no match.
				if err := checkPattern(p); err != nil {
					return false, err
				}
				return false, nil
			}
			ok, err := Match(p, sub)
			if err != nil || !ok {
				return false, err
			}
		case []any:
			ok, err := matchLeaf(p, ev, present)
			if err != nil || !ok {
				return false, err
			}
		default:
			return false, fmt.Errorf("%w: field %q: pattern values must be arrays or objects, got %T", ErrPattern, k, pv)
		}
	}
	return true, nil
}

func checkPattern(p map[string]any) error {
	_, err := Match(p, map[string]any{})
	return err
}

// matchLeaf matches one field against a pattern array: any element
// matching any of the event's values (an array field matches element-wise).
func matchLeaf(alts []any, ev any, present bool) (bool, error) {
	values := []any{ev}
	if arr, ok := ev.([]any); ok {
		values = arr
	}
	for _, alt := range alts {
		if op, ok := alt.(map[string]any); ok {
			if len(op) != 1 {
				return false, fmt.Errorf("%w: an operator object has exactly one key, got %v", ErrPattern, op)
			}
			for name, arg := range op {
				if name == "exists" {
					want, ok := arg.(bool)
					if !ok {
						return false, fmt.Errorf("%w: exists takes true or false", ErrPattern)
					}
					if want == present {
						return true, nil
					}
					continue
				}
				if !present {
					continue
				}
				for _, v := range values {
					ok, err := matchOp(name, arg, v)
					if err != nil {
						return false, err
					}
					if ok {
						return true, nil
					}
				}
			}
			continue
		}
		if !present {
			continue
		}
		for _, v := range values {
			if equalJSON(alt, v) {
				return true, nil
			}
		}
	}
	return false, nil
}

func matchOp(name string, arg, v any) (bool, error) {
	s, isStr := v.(string)
	switch name {
	case "prefix", "suffix", "equals-ignore-case":
		a, ok := arg.(string)
		if !ok {
			return false, fmt.Errorf("%w: %s takes a string", ErrPattern, name)
		}
		if !isStr {
			return false, nil
		}
		switch name {
		case "prefix":
			return strings.HasPrefix(s, a), nil
		case "suffix":
			return strings.HasSuffix(s, a), nil
		default:
			return strings.EqualFold(s, a), nil
		}
	case "anything-but":
		switch a := arg.(type) {
		case []any:
			for _, x := range a {
				if equalJSON(x, v) {
					return false, nil
				}
			}
			return true, nil
		case map[string]any:
			p, ok := a["prefix"].(string)
			if len(a) != 1 || !ok {
				return false, fmt.Errorf("%w: anything-but takes values or {\"prefix\": ...}", ErrPattern)
			}
			return !isStr || !strings.HasPrefix(s, p), nil
		default:
			return !equalJSON(a, v), nil
		}
	}
	return false, fmt.Errorf("%w: operator %q", ErrPattern, name)
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	}
	return false
}

// Event is an EventBridge event envelope, fields in EventBridge's order.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// NewEvent builds an envelope (version "0", a fresh id, time in
// EventBridge's second-precision UTC form).
func (d *Deliverer) NewEvent(source, detailType string, at time.Time, resources []string, detail any) (Event, error) {
	b, err := json.Marshal(detail)
	if err != nil {
		return Event{}, fmt.Errorf("triggers: event detail: %w", err)
	}
	if resources == nil {
		resources = []string{}
	}
	return Event{Version: "0", ID: newUUID(), DetailType: detailType, Source: source, Account: d.opts.Account,
		Time: at.UTC().Format("2006-01-02T15:04:05Z"), Region: d.opts.Region, Resources: resources, Detail: b}, nil
}

// Bus is the default event bus with the template's rules.
type Bus struct {
	d     *Deliverer
	Rules []*BusRule
}

// BusRule is a resolved rule.
type BusRule struct {
	cfntemplate.Rule
	ARN     string
	Targets []BusTarget
}

// BusTarget is a resolved rule target.
type BusTarget struct {
	cfntemplate.RuleTarget
	ARN    string
	DLQURL string
}

// EventBridge's retry defaults for a target (185 attempts over 24 hours).
const (
	EventsDefaultRetries = 185
	EventsDefaultMaxAge  = 24 * time.Hour
)

// NewBus reads t's rules with event patterns, resolving targets and
// dead-letter queues with r.
func NewBus(ctx context.Context, t *cfntemplate.Template, r *cfntemplate.Resolver, d *Deliverer) (*Bus, error) {
	rules, err := t.Rules()
	if err != nil {
		return nil, err
	}
	b := &Bus{d: d}
	for _, ru := range rules {
		if ru.EventPattern == nil {
			continue
		}
		if err := checkPattern(ru.EventPattern); err != nil {
			return nil, fmt.Errorf("triggers: rule %s: %w", ru.LogicalID, err)
		}
		br := &BusRule{Rule: ru, ARN: fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", d.opts.Region, d.opts.Account, ru.LogicalID)}
		if v, ok := r.Attrs[ru.LogicalID+".Arn"].(string); ok {
			br.ARN = v
		}
		for _, tg := range ru.Targets {
			bt := BusTarget{RuleTarget: tg}
			if bt.ARN, err = r.String(tg.Arn); err != nil {
				return nil, fmt.Errorf("triggers: rule %s target %s: %w", ru.LogicalID, tg.ID, err)
			}
			if tg.InputTransformer != nil {
				return nil, fmt.Errorf("triggers: rule %s target %s: InputTransformer is not implemented", ru.LogicalID, tg.ID)
			}
			if tg.DLQArn != nil {
				arn, err := r.String(tg.DLQArn)
				if err != nil {
					return nil, fmt.Errorf("triggers: rule %s target %s: dead-letter queue: %w", ru.LogicalID, tg.ID, err)
				}
				if bt.DLQURL, err = d.queueURL(ctx, arn); err != nil {
					return nil, fmt.Errorf("triggers: rule %s: %w", ru.LogicalID, err)
				}
			}
			br.Targets = append(br.Targets, bt)
		}
		b.Rules = append(b.Rules, br)
	}
	return b, nil
}

// RuleDelivery is one rule target's delivery of an event.
type RuleDelivery struct {
	Rule   string
	Target string
	Delivery
}

// Put sends ev to every enabled rule whose pattern matches it; each
// target gets the event (or its Input / InputPath) as an asynchronous
// invocation, retried per its retry policy and dead-lettered with
// EventBridge's DLQ attributes. No matching rule: no deliveries.
func (b *Bus) Put(ctx context.Context, ev Event) ([]RuleDelivery, error) {
	raw, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("triggers: event: %w", err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return nil, fmt.Errorf("triggers: event: %w", err)
	}
	evTime, err := time.Parse(time.RFC3339, ev.Time)
	if err != nil {
		return nil, fmt.Errorf("triggers: event time %q: %w", ev.Time, err)
	}
	var out []RuleDelivery
	for _, ru := range b.Rules {
		if ru.State != "ENABLED" {
			continue
		}
		ok, err := Match(ru.EventPattern, decoded)
		if err != nil {
			return out, fmt.Errorf("triggers: rule %s: %w", ru.LogicalID, err)
		}
		if !ok {
			continue
		}
		for _, tg := range ru.Targets {
			payload := raw
			switch {
			case tg.HasInput:
				payload = []byte(tg.Input)
			case tg.InputPath != "":
				if payload, err = inputPath(decoded, tg.InputPath); err != nil {
					return out, fmt.Errorf("triggers: rule %s target %s: %w", ru.LogicalID, tg.ID, err)
				}
			}
			plan := retryPlan{maxRetries: tg.Retry.MaximumRetryAttempts, maxAge: time.Duration(tg.Retry.MaximumEventAgeInSeconds) * time.Second, backoff: expBackoff}
			if plan.maxRetries < 0 {
				plan.maxRetries = EventsDefaultRetries
			}
			if tg.Retry.MaximumEventAgeInSeconds < 0 {
				plan.maxAge = EventsDefaultMaxAge
			}
			del := b.d.deliver(ctx, tg.ARN, payload, evTime, plan, tg.DLQURL, func(e *InvokeError, retries int) map[string]string {
				cond := "MaximumRetryAttempts"
				if !e.Retryable {
					cond = "NonRetryableError"
				}
				return map[string]string{
					"RULE_ARN": ru.ARN, "TARGET_ARN": tg.ARN, "ERROR_CODE": e.Code, "ERROR_MESSAGE": e.Message,
					"EXHAUSTED_RETRY_CONDITION": cond, "RETRY_ATTEMPTS": strconv.Itoa(retries),
				}
			}, nil)
			out = append(out, RuleDelivery{Rule: ru.LogicalID, Target: tg.ID, Delivery: del})
		}
	}
	return out, nil
}

// inputPath selects $.a.b from the event.
func inputPath(ev map[string]any, path string) ([]byte, error) {
	rest, ok := strings.CutPrefix(path, "$")
	if !ok {
		return nil, fmt.Errorf("InputPath %q must start with $", path)
	}
	var cur any = ev
	for _, k := range strings.Split(strings.TrimPrefix(rest, "."), ".") {
		if k == "" {
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("InputPath %q: %q is not an object field", path, k)
		}
		cur = m[k]
	}
	return json.Marshal(cur)
}

// KMS event detail types (aws.kms).
const (
	DetailKMSMaterialExpiration = "KMS Imported Key Material Expiration"
	DetailKMSRotation           = "KMS CMK Rotation"
	DetailKMSDeletion           = "KMS CMK Deletion"
)

// KMSExpirationEvent is "KMS Imported Key Material Expiration" for the
// key keyARN (detail: key-id, and key-material-id when known).
func (d *Deliverer) KMSExpirationEvent(keyARN, materialID string, at time.Time) (Event, error) {
	detail := map[string]string{"key-id": keyIDOf(keyARN)}
	if materialID != "" {
		detail["key-material-id"] = materialID
	}
	return d.NewEvent("aws.kms", DetailKMSMaterialExpiration, at, []string{keyARN}, detail)
}

// KMSRotationEvent is "KMS CMK Rotation" for keyARN: an on-demand
// rotation (of imported material: key-origin EXTERNAL) from material
// previous to current.
func (d *Deliverer) KMSRotationEvent(keyARN, origin, rotationType, previous, current string, at time.Time) (Event, error) {
	detail := struct {
		KeyID        string `json:"key-id"`
		KeyOrigin    string `json:"key-origin"`
		RotationType string `json:"rotation-type"`
		Previous     string `json:"previous-key-material-id"`
		Current      string `json:"current-key-material-id"`
	}{keyIDOf(keyARN), origin, rotationType, previous, current}
	return d.NewEvent("aws.kms", DetailKMSRotation, at, []string{keyARN}, detail)
}

func keyIDOf(arn string) string {
	if _, id, ok := strings.Cut(arn, ":key/"); ok {
		return id
	}
	return arn
}
