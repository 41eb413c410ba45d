package soak

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/ddbfault"
	"github.com/keyferry/keyferry/test/kmsemu"
)

// Fault kinds, the keys of Report.FaultsInjected.
const (
	FaultKMS5xx       = "kms_5xx"
	FaultKMSThrottle  = "kms_throttle_storm"
	FaultKMSLatency   = "kms_latency"
	FaultKMSApplyDrop = "kms_apply_then_drop"
	FaultDDB5xx       = "dynamodb_5xx"
	FaultDDBThrottle  = "dynamodb_throttled"
	FaultDDBLatency   = "dynamodb_latency"
	FaultDDBTimeout   = "dynamodb_timeout"
	FaultDDBApplyDrop = "dynamodb_apply_then_drop"
	FaultDDBConflict  = "dynamodb_conditional_conflict"
	FaultWSDrop       = "ws_message_dropped"
	FaultWSDuplicate  = "ws_message_duplicated"
	FaultWSReorder    = "ws_message_reordered"
	FaultWSGone       = "ws_post_gone"
	FaultWSConnDrop   = "ws_connection_dropped_mid_message"
	FaultAgentKill    = "agent_sigkill_restart"
	// The pool's second agent: SIGTERM (drain: finish or hand back what it
	// holds, say so, exit) and start again.
	FaultAgentDrained = "agent_drained"
	// The pool's second agent frozen (SIGSTOP) longer than its heartbeat
	// lapse, then thawed: a link that drops without a FIN.
	FaultAgentPartitioned = "agent_partitioned_silently"
	FaultClockSkew        = "clock_skew_5m"
	FaultImportExpiry     = "import_parameters_expired"
	FaultDuplicateTrigger = "duplicate_trigger"
)

// mutating KMS operations: a lost response after the operation took effect
// is the interesting case for these.
var mutating = map[string]bool{
	"CreateKey": true, "ImportKeyMaterial": true, "UpdateAlias": true, "CreateAlias": true,
	"RotateKeyOnDemand": true, "DisableKey": true, "EnableKey": true, "ScheduleKeyDeletion": true,
	"TagResource": true, "GetParametersForImport": true, "DeleteImportedKeyMaterial": true,
}

// injector decides faults at random (seeded) and counts them by kind. It
// also tees every websocket message for the plaintext scan.
type injector struct {
	enabled    atomic.Bool
	stormUntil atomic.Int64 // unix nanos: throttling storm until then

	mu     sync.Mutex
	rng    *rand.Rand
	counts map[string]int
	wire   bytes.Buffer // every websocket message, both directions

	// onExpire expires every import token KMS has issued so far.
	onExpire func()
	// expiries left: bounded, so most jobs import on their first token.
	expiries int
	// onConnDrop drops a connection (DeleteConnection) asynchronously.
	onConnDrop func(id string)
}

func newInjector(seed uint64) *injector {
	return &injector{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), counts: map[string]int{}, expiries: 30}
}

func (in *injector) roll() float64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.Float64()
}

func (in *injector) intn(n int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.IntN(n)
}

func (in *injector) count(kind string) {
	in.mu.Lock()
	in.counts[kind]++
	in.mu.Unlock()
}

func (in *injector) snapshot() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int, len(in.counts))
	for k, v := range in.counts {
		out[k] = v
	}
	return out
}

func (in *injector) wireBytes() []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return bytes.Clone(in.wire.Bytes())
}

// storm starts a throttling storm for d.
func (in *injector) storm(d time.Duration) {
	in.stormUntil.Store(time.Now().Add(d).UnixNano())
	in.count(FaultKMSThrottle)
}

// kms is the KMS emulator's fault hook.
func (in *injector) kms(op string, _ []byte) *kmsemu.FaultAction {
	if !in.enabled.Load() || op == "Sign" && in.roll() < 0.5 {
		return nil
	}
	if time.Now().UnixNano() < in.stormUntil.Load() && in.roll() < 0.7 {
		return &kmsemu.FaultAction{ErrorType: "ThrottlingException", Message: "Rate exceeded (soak storm)"}
	}
	if mutating[op] && in.roll() < 0.05 {
		in.count(FaultKMSApplyDrop)
		return &kmsemu.FaultAction{DropResponse: true}
	}
	r := in.roll()
	switch {
	case r < 0.04:
		in.count(FaultKMS5xx)
		return &kmsemu.FaultAction{ErrorType: "KMSInternalException", Message: "soak: injected 500"}
	case r < 0.08:
		in.count(FaultKMSLatency)
		return &kmsemu.FaultAction{Delay: time.Duration(50+in.intn(400)) * time.Millisecond}
	}
	return nil
}

// dynamoWrites are the DynamoDB operations that change state: a lost
// answer after the write took effect is the interesting case for these.
var dynamoWrites = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "TransactWriteItems": true}

// dynamo is the DynamoDB fault proxy's hook. A lost conditional race is
// answered as DynamoDB answers one (the write does not happen), as if
// another writer had changed the item first.
func (in *injector) dynamo(op string, body []byte) *ddbfault.Action {
	if !in.enabled.Load() {
		return nil
	}
	r := in.roll()
	switch {
	case r < 0.015:
		in.count(FaultDDB5xx)
		return &ddbfault.Action{ErrorType: "InternalServerError", Message: "soak: injected 500"}
	case r < 0.03:
		in.count(FaultDDBThrottle)
		return &ddbfault.Action{ErrorType: "ProvisionedThroughputExceededException", Message: "soak: injected throttle"}
	case r < 0.05:
		in.count(FaultDDBLatency)
		return &ddbfault.Action{Delay: time.Duration(20+in.intn(200)) * time.Millisecond}
	case r < 0.06:
		in.count(FaultDDBTimeout)
		return &ddbfault.Action{Delay: time.Duration(300+in.intn(1200)) * time.Millisecond, Abort: true}
	case r < 0.075 && dynamoWrites[op]:
		in.count(FaultDDBApplyDrop)
		return &ddbfault.Action{DropResponse: true}
	case r < 0.085 && dynamoWrites[op] && ddbfault.Conditional(body):
		in.count(FaultDDBConflict)
		if op == "TransactWriteItems" {
			return &ddbfault.Action{ErrorType: "TransactionCanceledException", Message: "soak: injected lost race"}
		}
		return &ddbfault.Action{ErrorType: "ConditionalCheckFailedException", Message: "soak: injected lost race"}
	}
	return nil
}

// action reads the protocol action of a websocket message (no decoding of
// anything else: the message is opaque to the soak).
func action(b []byte) string {
	var v struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Action
}

// gateway is the API Gateway emulator's fault hook; it also tees messages.
func (in *injector) gateway(p apigwemu.FaultPoint) apigwemu.FaultAction {
	in.mu.Lock()
	in.wire.Write(p.Data)
	in.wire.WriteByte('\n')
	in.mu.Unlock()
	if !in.enabled.Load() {
		return apigwemu.Deliver
	}
	act := action(p.Data)
	if act != "wrap_request" && act != "wrap_result" {
		return apigwemu.Deliver
	}
	r := in.roll()
	switch {
	case r < 0.04:
		in.count(FaultWSDrop)
		return apigwemu.Drop
	case r < 0.09:
		in.count(FaultWSDuplicate)
		return apigwemu.Duplicate
	case r < 0.12:
		in.count(FaultWSReorder)
		return apigwemu.Hold
	case r < 0.14 && p.Direction == apigwemu.Outbound && p.FromPost:
		in.count(FaultWSGone)
		return apigwemu.Gone
	case r < 0.16 && in.onConnDrop != nil:
		in.count(FaultWSConnDrop)
		go in.onConnDrop(p.ConnectionID)
		return apigwemu.Drop
	case r < 0.19 && act == "wrap_request" && in.onExpire != nil:
		in.mu.Lock()
		ok := in.expiries > 0
		if ok {
			in.expiries--
		}
		in.mu.Unlock()
		if ok {
			in.count(FaultImportExpiry)
			in.onExpire()
		}
	}
	return apigwemu.Deliver
}

// sortedKinds lists fault kinds for stable output.
func sortedKinds(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// countHSMFaults counts the HSM faults the agent's hsmfault build logged
// ("hsm fault injected", by kind) across every agent process of the run.
func (r *soakRun) countHSMFaults() {
	logs := []string{filepath.Join(r.sb.Dir, "agent.log")}
	for _, p := range r.sb.PoolAgents {
		logs = append(logs, p.Log)
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			r.violate("agent log: %v", err)
			return
		}
		r.countHSMFaultLines(b)
	}
}

func (r *soakRun) countHSMFaultLines(b []byte) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.Contains(line, []byte(`"hsm fault injected"`)) {
			continue
		}
		var v struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(line, &v) == nil && v.Kind != "" {
			r.inj.count(v.Kind)
		}
	}
}
