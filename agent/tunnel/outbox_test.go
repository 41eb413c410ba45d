package tunnel

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// drain writes everything conn may take now and returns the messages in
// write order; reliable ones stay owed on conn.
func drain(o *Outbox, conn int) []string {
	var out []string
	for {
		m, ok := o.Next(conn)
		if !ok {
			return out
		}
		o.Written(conn, m, nil)
		out = append(out, string(m.data))
	}
}

func push(t *testing.T, o *Outbox, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if err := o.Push([]byte(m), true); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOutboxKeepsOrderAcrossRecycledConnection: a recycled connection's
// unacknowledged messages come back before anything the new connection
// writes, so the peer sees every message in queue order; messages the old
// connection's peer acknowledged are not sent again.
func TestOutboxKeepsOrderAcrossRecycledConnection(t *testing.T) {
	cases := []struct {
		name      string
		ackedOld  int  // messages of the old connection acknowledged before it is settled
		delivered bool // the old connection closed cleanly (peer read everything)
		want      []string
	}{
		{"nothing acknowledged", 0, false, []string{"m1", "m2", "m3", "m4", "m5"}},
		{"first acknowledged", 1, false, []string{"m2", "m3", "m4", "m5"}},
		{"closed cleanly", 0, true, []string{"m4", "m5"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOutbox()
			push(t, o, "m1", "m2", "m3")
			if got := drain(o, 1); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
				t.Fatalf("old connection wrote %v", got)
			}
			if tc.ackedOld > 0 {
				o.Ack(1, uint64(tc.ackedOld))
			}
			// Recycle: the new connection's writer starts before the old
			// connection is settled.
			o.Retire(1)
			push(t, o, "m4", "m5")
			if got := drain(o, 2); len(got) != 0 {
				t.Fatalf("new connection wrote %v while the retiring one still owed messages", got)
			}
			o.Settle(1, tc.delivered)
			sent := drain(o, 2)
			if !slices.Equal(sent, tc.want) {
				t.Fatalf("new connection wrote %v, want %v", sent, tc.want)
			}
			if n := o.Pending(); n != len(tc.want) {
				t.Fatalf("pending %d, want %d owed on the new connection", n, len(tc.want))
			}
			o.Ack(2, uint64(len(tc.want)))
			if n := o.Pending(); n != 0 {
				t.Fatalf("pending %d after every acknowledgement", n)
			}
		})
	}
}

// TestOutboxRetiredWithNothingOwedDoesNotBlock: a retiring connection whose
// messages were all acknowledged holds nothing back.
func TestOutboxRetiredWithNothingOwedDoesNotBlock(t *testing.T) {
	o := NewOutbox()
	push(t, o, "m1")
	drain(o, 1)
	o.Ack(1, 1)
	o.Retire(1)
	push(t, o, "m2")
	if got := drain(o, 2); !slices.Equal(got, []string{"m2"}) {
		t.Fatalf("new connection wrote %v, want [m2]", got)
	}
}

// TestOutboxFailedWriteKeepsPlace: a reliable message whose write failed
// goes back at its place; an unreliable one (heartbeat) is dropped.
func TestOutboxFailedWriteKeepsPlace(t *testing.T) {
	o := NewOutbox()
	push(t, o, "m1")
	if err := o.Push([]byte("hb"), false); err != nil {
		t.Fatal(err)
	}
	push(t, o, "m2")
	m1, _ := o.Next(1)
	hb, _ := o.Next(1)
	o.Written(1, hb, errors.New("broken pipe"))
	o.Written(1, m1, errors.New("broken pipe"))
	o.Settle(1, false)
	if got := drain(o, 2); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("wrote %v, want [m1 m2]", got)
	}
}

func TestOutboxFull(t *testing.T) {
	o := NewOutbox()
	for i := range MaxQueued {
		if err := o.Push([]byte(fmt.Sprint(i)), true); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := o.Push([]byte("x"), true); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("push beyond MaxQueued: %v, want ErrQueueFull", err)
	}
}
