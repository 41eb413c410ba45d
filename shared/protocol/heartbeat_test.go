package protocol

import (
	"testing"
	"time"
)

func TestOpenHeartbeatRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Heartbeat)
		want errWant
	}{
		{"missing agent_id", func(m *Heartbeat) { m.AgentID = "" }, errWant{missing: "agent_id"}},
		{"missing sent_at", func(m *Heartbeat) { m.SentAt = time.Time{} }, errWant{missing: "sent_at"}},
		{"negative in_flight", func(m *Heartbeat) { m.InFlight = -1 }, errWant{invalid: "in_flight"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validHeartbeat()
			tc.edit(&m)
			got, err := OpenHeartbeat(mustDecode(t, sealRaw(t, nil, "", ActionHeartbeat, mustJSON(t, m))), nil)
			if got != nil {
				t.Fatalf("opened %+v", got)
			}
			checkErr(t, err, tc.want)
		})
	}
	// A negative seq is a JSON type error for uint64.
	_, err := OpenHeartbeat(mustDecode(t, sealRaw(t, nil, "", ActionHeartbeat,
		[]byte(`{"agent_id":"a","seq":-1,"sent_at":"2026-11-23T10:00:00Z","in_flight":0}`))), nil)
	checkErr(t, err, errWant{is: []error{ErrMalformed}, invalid: "seq"})
	// A heartbeat envelope cannot be opened as anything else.
	_, err = OpenError(mustDecode(t, mustSeal(t, nil, "", ActionHeartbeat, validHeartbeat())), verifierOf(t, agentSigner(t)))
	checkErr(t, err, errWant{is: []error{ErrWrongAction}})
}
