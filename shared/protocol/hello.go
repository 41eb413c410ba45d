package protocol

import (
	"github.com/keyferry/keyferry/shared/names"

	"fmt"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// Hello limits.
const (
	// MaxHelloAge is how long after SentAt a hello is accepted (plus skew).
	MaxHelloAge = 5 * time.Minute
	// MaxPending bounds Hello.Pending.
	MaxPending = 1024
)

// Capability is one key spec an agent can produce, with the wrapping
// algorithms and wrapping key sizes its HSM supports for it.
type Capability struct {
	KeySpec          keyspec.Spec                `json:"key_spec"`
	Algorithms       []keyspec.WrappingAlgorithm `json:"algorithms"`
	WrappingKeySpecs []keyspec.WrappingKeySpec   `json:"wrapping_key_specs"`
}

// Hello is the agent's first message on a connection, signed by its
// identity key; AgentID equals the envelope signer.
type Hello struct {
	AgentID string `json:"agent_id"`
	// Version is the agent software version.
	Version string `json:"version"`
	HSMPool string `json:"hsm_pool"`
	// IdentityPublicKey is the DER SPKI (ECDSA P-256) of the identity key
	// that signs this hello.
	IdentityPublicKey []byte       `json:"identity_public_key"`
	Capabilities      []Capability `json:"capabilities"`
	// Pending lists request ids the agent still owes results for.
	Pending []string `json:"pending,omitempty"`
	// HeartbeatSeconds is the agent's heartbeat interval: the control plane
	// treats a connection silent for HeartbeatLapseFactor of them as gone
	// (a partition without a FIN). Zero: DefaultHeartbeat.
	HeartbeatSeconds int       `json:"heartbeat_seconds,omitempty"`
	SentAt           time.Time `json:"sent_at"`
}

// Liveness: the agent's default heartbeat interval (agent/config's default)
// and how many silent intervals make a connection lapsed.
const (
	DefaultHeartbeat     = 4 * time.Minute
	HeartbeatLapseFactor = 3
)

// HeartbeatLapse is how long the connection that sent this hello may stay
// silent before the control plane treats it as gone.
func (m *Hello) HeartbeatLapse() time.Duration {
	hb := DefaultHeartbeat
	if m.HeartbeatSeconds > 0 {
		hb = time.Duration(m.HeartbeatSeconds) * time.Second
	}
	return HeartbeatLapseFactor * hb
}

// Action implements message.
func (Hello) Action() Action { return ActionHello }

func (m Hello) normalized() any {
	m.SentAt = m.SentAt.UTC()
	return m
}

func (m Hello) validate() error {
	if m.AgentID == "" {
		return missing("agent_id")
	}
	if err := checkSignerID(m.AgentID); err != nil {
		return invalidErr("agent_id", "must be usable as an envelope signer id", err)
	}
	if err := checkText("version", m.Version); err != nil {
		return err
	}
	if m.HSMPool == "" {
		return missing("hsm_pool")
	}
	if err := names.CheckPool(m.HSMPool); err != nil {
		return invalid("hsm_pool", err.Error())
	}
	if _, err := parseP256SPKI("identity_public_key", m.IdentityPublicKey); err != nil {
		return err
	}
	if len(m.Capabilities) == 0 {
		return missing("capabilities")
	}
	seen := map[keyspec.Spec]bool{}
	for i, c := range m.Capabilities {
		f := fmt.Sprintf("capabilities[%d]", i)
		if _, err := checkSpec(f+".key_spec", c.KeySpec); err != nil {
			return err
		}
		if seen[c.KeySpec] {
			return invalid(f+".key_spec", fmt.Sprintf("%s listed twice", c.KeySpec))
		}
		seen[c.KeySpec] = true
		if len(c.Algorithms) == 0 {
			return missing(f + ".algorithms")
		}
		for j, a := range c.Algorithms {
			if err := checkAlgorithm(fmt.Sprintf("%s.algorithms[%d]", f, j), a); err != nil {
				return err
			}
		}
		if len(c.WrappingKeySpecs) == 0 {
			return missing(f + ".wrapping_key_specs")
		}
		for j, w := range c.WrappingKeySpecs {
			if err := checkWrappingKeySpec(fmt.Sprintf("%s.wrapping_key_specs[%d]", f, j), w); err != nil {
				return err
			}
		}
	}
	if m.HeartbeatSeconds < 0 || time.Duration(m.HeartbeatSeconds)*time.Second > 10*time.Minute {
		return invalid("heartbeat_seconds", fmt.Sprintf("%d is outside 0..600 (API Gateway's idle timeout)", m.HeartbeatSeconds))
	}
	if err := checkPending(m.Pending); err != nil {
		return err
	}
	return checkTime("sent_at", m.SentAt)
}

// Supports reports whether the agent announced it can wrap spec with
// algorithm a under a wrapping key of spec w, and KMS accepts that.
func (m *Hello) Supports(spec keyspec.Spec, a keyspec.WrappingAlgorithm, w keyspec.WrappingKeySpec) bool {
	if keyspec.CheckWrapping(spec, a, w) != nil {
		return false
	}
	for _, c := range m.Capabilities {
		if c.KeySpec != spec {
			continue
		}
		okA, okW := false, false
		for _, x := range c.Algorithms {
			okA = okA || x == a
		}
		for _, x := range c.WrappingKeySpecs {
			okW = okW || x == w
		}
		return okA && okW
	}
	return false
}

// OpenHello verifies env's signature with v (the registered identity key of
// the agent named by env.Signer) first, then decodes and checks the hello
// strictly: AgentID must equal the envelope signer, IdentityPublicKey must be
// v's key, and SentAt must lie within [now-MaxHelloAge-skew, now+skew].
func OpenHello(env *Envelope, v *Verifier, now time.Time, skew time.Duration) (*Hello, error) {
	var m Hello
	if err := open(env, v, ActionHello, &m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if m.AgentID != env.Signer {
		return nil, fmt.Errorf("hello: %w", invalid("agent_id", fmt.Sprintf("%q differs from the envelope signer %q", m.AgentID, env.Signer)))
	}
	id, _ := parseP256SPKI("identity_public_key", m.IdentityPublicKey)
	if !id.Equal(v.PublicKey()) {
		return nil, fmt.Errorf("hello: %w", invalid("identity_public_key", "is not the key registered for this agent"))
	}
	if err := checkClock(now, skew, "sent_at", m.SentAt, "sent_at+max_age", m.SentAt.Add(MaxHelloAge)); err != nil {
		return nil, fmt.Errorf("hello from %s: %w", m.AgentID, err)
	}
	m.SentAt = m.SentAt.UTC()
	return &m, nil
}

// checkPending checks a list of request ids an agent still holds (hello's
// and draining's pending).
func checkPending(ids []string) error {
	if len(ids) > MaxPending {
		return invalid("pending", fmt.Sprintf("%d entries, limit %d", len(ids), MaxPending))
	}
	for i, p := range ids {
		if err := checkText(fmt.Sprintf("pending[%d]", i), p); err != nil {
			return err
		}
	}
	return nil
}
