package protocol

import (
	"fmt"
	"time"
)

// Draining is the agent's notice that it is stopping (SIGTERM): it takes no
// new wrap requests, finishes the ones it lists in Pending (their results
// follow on this connection), and any other request the control plane
// thinks is outstanding at it goes to another agent of the pool at once.
// Signed by the agent's identity key; AgentID equals the envelope signer.
type Draining struct {
	AgentID string    `json:"agent_id"`
	Pending []string  `json:"pending,omitempty"`
	SentAt  time.Time `json:"sent_at"`
}

// Action implements message.
func (Draining) Action() Action { return ActionDraining }

func (m Draining) normalized() any {
	m.SentAt = m.SentAt.UTC()
	return m
}

func (m Draining) validate() error {
	if err := checkText("agent_id", m.AgentID); err != nil {
		return err
	}
	if err := checkPending(m.Pending); err != nil {
		return err
	}
	return checkTime("sent_at", m.SentAt)
}

// OpenDraining verifies env under v (the agent's registered identity) and
// decodes the notice; AgentID must equal the envelope signer.
func OpenDraining(env *Envelope, v *Verifier) (*Draining, error) {
	var m Draining
	if err := open(env, v, ActionDraining, &m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("draining: %w", err)
	}
	if m.AgentID != env.Signer {
		return nil, fmt.Errorf("draining: %w", invalid("agent_id", fmt.Sprintf("%q differs from the envelope signer %q", m.AgentID, env.Signer)))
	}
	m.SentAt = m.SentAt.UTC()
	return &m, nil
}
