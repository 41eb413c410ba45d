package tunnel

import (
	"slices"
	"sync"
)

// Outbox is the tunnel's outgoing queue and its acknowledgements, for every
// connection at once. Messages are written in the order they were queued:
// each gets an id when queued, a connection's writer takes the lowest id
// waiting, and a reliable message written on a connection stays owed
// (unacknowledged) on that connection until the peer acknowledges it (Ack)
// or the connection is settled (Settle): owed messages of a connection that
// the peer may not have read go back into the queue at their place by id.
//
// While a retiring connection (Retire) still has a write in progress or
// messages owed, no other connection takes messages: otherwise the new
// connection's writer would write later messages before the retired
// connection's owed ones came back (reordering them).
//
// Outbox needs no socket: the connection is an int id.
type Outbox struct {
	mu      sync.Mutex
	nextID  uint64
	queue   []outMsg // sorted by id
	conns   map[int]*outConn
	retired map[int]bool
}

// outMsg is one queued message.
type outMsg struct {
	id       uint64
	data     []byte
	reliable bool
	seq      uint64 // acknowledgement sequence on the connection that wrote it
}

type outConn struct {
	writing int
	seq     uint64
	owed    []outMsg // written, reliable, not yet acknowledged; by seq
}

// NewOutbox returns an empty outbox.
func NewOutbox() *Outbox {
	return &Outbox{conns: map[int]*outConn{}, retired: map[int]bool{}}
}

func (o *Outbox) conn(id int) *outConn {
	c := o.conns[id]
	if c == nil {
		c = &outConn{}
		o.conns[id] = c
	}
	return c
}

// Push queues data; reliable messages are re-sent until acknowledged. It
// returns ErrQueueFull when MaxQueued messages are waiting.
func (o *Outbox) Push(data []byte, reliable bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) >= MaxQueued {
		return ErrQueueFull
	}
	o.nextID++
	o.queue = append(o.queue, outMsg{id: o.nextID, data: data, reliable: reliable})
	return nil
}

// Next takes the next message for connection conn to write, or reports
// false when there is none or a retiring connection is still unsettled.
// Every message taken must be given back with Written.
func (o *Outbox) Next(conn int) (outMsg, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id := range o.retired {
		if c := o.conns[id]; id != conn && c != nil && (c.writing > 0 || len(c.owed) > 0) {
			return outMsg{}, false
		}
	}
	if len(o.queue) == 0 {
		return outMsg{}, false
	}
	m := o.queue[0]
	o.queue[0] = outMsg{}
	o.queue = o.queue[1:]
	o.conn(conn).writing++
	return m, true
}

// Written reports the write of m on conn. A failed write puts a reliable m
// back at its place; a successful one of a reliable m leaves it owed on
// conn and returns the acknowledgement sequence to ask the peer for (0 for
// an unreliable m).
func (o *Outbox) Written(conn int, m outMsg, err error) (seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.conn(conn)
	c.writing--
	switch {
	case err != nil && m.reliable:
		o.insert([]outMsg{m})
	case err == nil && m.reliable:
		c.seq++
		m.seq = c.seq
		c.owed = append(c.owed, m)
		return m.seq
	}
	return 0
}

// Ack drops every message conn owes up to acknowledgement sequence seq.
func (o *Outbox) Ack(conn int, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.conns[conn]
	if c == nil {
		return
	}
	i := 0
	for i < len(c.owed) && c.owed[i].seq <= seq {
		i++
	}
	c.owed = c.owed[i:]
}

// Retire marks conn as retiring: other connections take no message until
// it is settled.
func (o *Outbox) Retire(conn int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conn(conn)
	o.retired[conn] = true
}

// Settle forgets conn. If delivered (the peer provably read everything,
// e.g. it echoed our close), its owed messages are dropped; otherwise they
// go back into the queue at their place. It returns how many went back.
func (o *Outbox) Settle(conn int, delivered bool) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.conns[conn]
	delete(o.conns, conn)
	delete(o.retired, conn)
	if c == nil || delivered {
		return 0
	}
	o.insert(c.owed)
	return len(c.owed)
}

// insert merges ms into the queue by id.
func (o *Outbox) insert(ms []outMsg) {
	for _, m := range ms {
		m.seq = 0
		i, _ := slices.BinarySearchFunc(o.queue, m.id, func(x outMsg, id uint64) int {
			switch {
			case x.id < id:
				return -1
			case x.id > id:
				return 1
			}
			return 0
		})
		o.queue = slices.Insert(o.queue, i, m)
	}
}

// Pending counts messages queued, being written or owed on any connection.
func (o *Outbox) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.queue)
	for _, c := range o.conns {
		n += c.writing + len(c.owed)
	}
	return n
}
