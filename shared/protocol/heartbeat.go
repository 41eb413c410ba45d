package protocol

import (
	"fmt"
	"time"
)

// Heartbeat keeps the API Gateway connection alive (its 10-minute idle
// timeout is reset only by data messages). Either side may send it; signing
// is optional.
type Heartbeat struct {
	AgentID  string    `json:"agent_id"`
	Seq      uint64    `json:"seq"`
	SentAt   time.Time `json:"sent_at"`
	InFlight int       `json:"in_flight"`
}

// Action implements message.
func (Heartbeat) Action() Action { return ActionHeartbeat }

func (m Heartbeat) normalized() any {
	m.SentAt = m.SentAt.UTC()
	return m
}

func (m Heartbeat) validate() error {
	if err := checkText("agent_id", m.AgentID); err != nil {
		return err
	}
	if m.InFlight < 0 {
		return invalid("in_flight", "must not be negative")
	}
	return checkTime("sent_at", m.SentAt)
}

// OpenHeartbeat decodes a heartbeat. With v non-nil the envelope must be
// signed and verify under v; with v nil the signature, if any, is NOT
// checked and the heartbeat must be treated as untrusted liveness only.
func OpenHeartbeat(env *Envelope, v *Verifier) (*Heartbeat, error) {
	var m Heartbeat
	if err := open(env, v, ActionHeartbeat, &m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	m.SentAt = m.SentAt.UTC()
	return &m, nil
}
