package apigwemu

// Direction tells which way a message travels through the gateway.
type Direction int

// Message directions.
const (
	// Inbound is a client message on its way to a route handler.
	Inbound Direction = iota + 1
	// Outbound is a PostToConnection (or route response) on its way to the
	// client.
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "inbound"
	case Outbound:
		return "outbound"
	}
	return "unknown"
}

// FaultPoint describes a message the Fault hook may interfere with.
type FaultPoint struct {
	Direction    Direction
	ConnectionID string
	// RouteKey is the selected route for inbound messages, "" outbound.
	RouteKey string
	// Data is the message (do not modify).
	Data []byte
	// FromPost is true for outbound messages sent by PostToConnection (false
	// for route responses).
	FromPost bool
}

// FaultAction is what the gateway does with a message.
type FaultAction int

// Fault actions.
const (
	// Deliver delivers the message normally.
	Deliver FaultAction = iota
	// Drop silently loses the message; PostToConnection still answers 200.
	Drop
	// Duplicate delivers the message twice.
	Duplicate
	// Hold delays the message until the next message in the same direction
	// on the same connection has been delivered, then delivers it
	// (reordering). Held messages are lost if the connection closes first.
	Hold
	// Gone answers PostToConnection with 410 GoneException without sending
	// (outbound posts only; otherwise treated as Drop).
	Gone
)

// Fault is a fault-injection hook, consulted once per message. It runs on
// the gateway's goroutines and must be safe for concurrent use.
type Fault func(p FaultPoint) FaultAction
