package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/protocol"
)

type recObserver struct {
	mu         sync.Mutex
	reconnects map[string]int
	up         bool
}

func (o *recObserver) Connected(up bool) { o.mu.Lock(); o.up = up; o.mu.Unlock() }
func (o *recObserver) Reconnect(r string) {
	o.mu.Lock()
	o.reconnects[r]++
	o.mu.Unlock()
}
func (o *recObserver) count(r string) int { o.mu.Lock(); defer o.mu.Unlock(); return o.reconnects[r] }

type harness struct {
	cl     *Client
	obs    *recObserver
	cancel context.CancelFunc
	done   chan struct{}
	inMu   sync.Mutex
	in     [][]byte
}

func isHello(m []byte) bool     { return bytes.HasPrefix(m, []byte(`{"action":"hello"`)) }
func isHeartbeat(m []byte) bool { return bytes.HasPrefix(m, []byte(`{"action":"heartbeat"`)) }

func startClient(t *testing.T, s *wsServer, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{obs: &recObserver{reconnects: map[string]int{}}, done: make(chan struct{})}
	var hellos int
	var hmu sync.Mutex
	cfg := Config{
		Endpoint: s.url(), HeartbeatInterval: time.Hour, MaxConnectionAge: 2 * time.Hour,
		BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, HandshakeTimeout: 5 * time.Second,
		Hello: func(context.Context) ([]byte, error) {
			hmu.Lock()
			defer hmu.Unlock()
			hellos++
			return []byte(fmt.Sprintf(`{"action":"hello","n":%d}`, hellos)), nil
		},
		Heartbeat: func(_ context.Context, seq uint64) ([]byte, error) {
			return []byte(fmt.Sprintf(`{"action":"heartbeat","seq":%d}`, seq)), nil
		},
		Handle: func(_ context.Context, m []byte) {
			h.inMu.Lock()
			h.in = append(h.in, m)
			h.inMu.Unlock()
		},
		Observer: h.obs,
	}
	if mod != nil {
		mod(&cfg)
	}
	cl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { defer close(h.done); cl.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// TestHeartbeatKeepsConnectionWithinIdleTimeout: with the server enforcing
// an idle timeout (scaled: 200 ms for a 50 ms heartbeat, the same order as
// 10 min for 4 min), the only connection survives many idle periods and the
// heartbeats arrive at the configured interval, never in bursts.
func TestHeartbeatKeepsConnectionWithinIdleTimeout(t *testing.T) {
	const hb, idle = 50 * time.Millisecond, 200 * time.Millisecond
	s := newWSServer(t, idle, 0)
	startClient(t, s, func(c *Config) { c.HeartbeatInterval = hb; c.MaxConnectionAge = time.Hour })
	c := s.waitConn(t)
	waitFor(t, "10 heartbeats", func() bool {
		n := 0
		for _, m := range c.messages() {
			if isHeartbeat(m.data) {
				n++
			}
		}
		return n >= 10
	})
	if n := len(s.all()); n != 1 {
		t.Fatalf("%d connections: the idle timeout dropped the connection despite heartbeats", n)
	}
	if _, _, killed := c.closed(); killed {
		t.Fatal("server closed the connection for idleness")
	}
	var prev time.Time
	for _, m := range c.messages() {
		if !isHeartbeat(m.data) {
			continue
		}
		if !prev.IsZero() {
			if gap := m.at.Sub(prev); gap < hb/2 || gap >= idle {
				t.Errorf("heartbeat gap %s outside [%s, %s)", gap, hb/2, idle)
			}
		}
		prev = m.at
	}
	if first := c.messages()[0]; !isHello(first.data) {
		t.Fatalf("first message is %s, want hello", first.data)
	}
}

func TestReconnectAfterServerDrop(t *testing.T) {
	s := newWSServer(t, 0, 0)
	h := startClient(t, s, nil)
	c1 := s.waitConn(t)
	waitFor(t, "hello on conn 1", func() bool { return len(c1.messages()) >= 1 })
	c1.drop()
	c2 := s.waitConn(t)
	waitFor(t, "hello on conn 2", func() bool { return len(c2.messages()) >= 1 })
	if !isHello(c2.messages()[0].data) {
		t.Fatalf("conn 2 did not start with hello: %s", c2.messages()[0].data)
	}
	waitFor(t, "reconnect counted", func() bool { return h.obs.count("drop") == 1 })
	// Drop repeatedly: the client keeps coming back.
	for i := 0; i < 3; i++ {
		c2.drop()
		c2 = s.waitConn(t)
	}
	waitFor(t, "4 drops counted", func() bool { return h.obs.count("drop") == 4 })
}

// TestRecycleBeforeMaxAge (time scaled: 400 ms max age instead of 2 h): the
// client replaces each connection before the server's age limit, the new
// connection says hello before the old one is closed (overlap), the old one
// ends with a normal close frame, and the server never has to kill one.
func TestRecycleBeforeMaxAge(t *testing.T) {
	const maxAge = 400 * time.Millisecond
	s := newWSServer(t, 0, maxAge)
	h := startClient(t, s, func(c *Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.MaxConnectionAge = maxAge
		c.RecycleLead = 150 * time.Millisecond
	})
	waitFor(t, "5 connections", func() bool { return len(s.all()) >= 5 })
	h.stop()
	conns := s.all()
	for i, c := range conns[:3] {
		waitFor(t, "close", func() bool { at, _, _ := c.closed(); return !at.IsZero() })
		closedAt, code, killed := c.closed()
		if killed {
			t.Fatalf("conn %d was killed by the server's max-age limit", c.id)
		}
		if code != 1000 {
			t.Fatalf("conn %d closed with code %d, want a normal close frame", c.id, code)
		}
		if age := closedAt.Sub(c.opened); age >= maxAge {
			t.Fatalf("conn %d lived %s, limit %s", c.id, age, maxAge)
		}
		next := conns[i+1]
		msgs := next.messages()
		if len(msgs) == 0 || !isHello(msgs[0].data) {
			t.Fatalf("conn %d did not start with hello", next.id)
		}
		if !msgs[0].at.Before(closedAt) {
			t.Fatalf("no overlap: conn %d hello at %s, conn %d closed at %s", next.id, msgs[0].at, c.id, closedAt)
		}
	}
	if h.obs.count("recycle") < 3 || h.obs.count("drop") != 0 {
		t.Fatalf("reconnects %v", h.obs.reconnects)
	}
}

// TestFrameSplitting reads the raw client frames: a 100 KiB message goes out
// as continuation frames of at most 32 KiB each (header included) and a
// message above 128 KiB is refused before anything is sent.
func TestFrameSplitting(t *testing.T) {
	s := newWSServer(t, 0, 0)
	h := startClient(t, s, nil)
	c := s.waitConn(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 100*1024/16)
	if err := h.cl.Send(big); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "big message", func() bool {
		for _, m := range c.messages() {
			if bytes.Equal(m.data, big) {
				return true
			}
		}
		return false
	})
	if err := h.cl.Send(make([]byte, protocol.MaxMessageBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize message: %v", err)
	}
	if err := h.cl.Send(make([]byte, protocol.MaxMessageBytes)); err != nil {
		t.Fatalf("message of exactly 128 KiB refused: %v", err)
	}
	waitFor(t, "128 KiB message", func() bool { return len(c.messages()) == 3 })
	frames, err := parseFrames(c.tee.bytes())
	if err != nil {
		t.Fatal(err)
	}
	var data []frame
	for _, f := range frames {
		if f.header+len(f.payload) > protocol.MaxFrameBytes {
			t.Fatalf("frame of %d bytes exceeds %d", f.header+len(f.payload), protocol.MaxFrameBytes)
		}
		if f.opcode < 8 {
			data = append(data, f)
		}
	}
	// Reassemble messages from the raw frames.
	var msgs [][]byte
	var cur []byte
	var counts []int
	n := 0
	for _, f := range data {
		if len(cur) == 0 && n == 0 && f.opcode == 0 {
			t.Fatal("continuation frame without a start")
		}
		cur = append(cur, f.payload...)
		n++
		if f.fin {
			msgs, counts = append(msgs, cur), append(counts, n)
			cur, n = nil, 0
		}
	}
	if len(msgs) != 3 || !bytes.Equal(msgs[1], big) {
		t.Fatalf("reassembled %d messages", len(msgs))
	}
	if counts[1] < 4 || counts[2] < 5 {
		t.Fatalf("100 KiB went out in %d frames and 128 KiB in %d; want >= 4 and >= 5", counts[1], counts[2])
	}
}

// TestResultQueuedAcrossDrop: a request received just before the server
// drops the connection is answered on the next connection.
func TestResultQueuedAcrossDrop(t *testing.T) {
	s := newWSServer(t, 0, 0)
	var h *harness
	release := make(chan struct{})
	h = startClient(t, s, func(c *Config) {
		c.Handle = func(_ context.Context, m []byte) {
			if strings.Contains(string(m), "wrap_request") {
				go func() {
					<-release // the "HSM" finishes after the drop
					if err := h.cl.Send([]byte(`{"action":"wrap_result","request_id":"r1"}`)); err != nil {
						t.Error(err)
					}
				}()
			}
		}
	})
	c1 := s.waitConn(t)
	waitFor(t, "hello", func() bool { return len(c1.messages()) == 1 })
	if err := c1.ws.WriteMessage(1, []byte(`{"action":"wrap_request","request_id":"r1"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	c1.drop()
	// Hold the server "down" briefly: the result is produced while disconnected.
	close(release)
	c2 := s.waitConn(t)
	waitFor(t, "result on conn 2", func() bool {
		for _, m := range c2.messages() {
			if strings.Contains(string(m.data), "wrap_result") {
				return true
			}
		}
		return false
	})
	for _, m := range c1.messages() {
		if strings.Contains(string(m.data), "wrap_result") {
			t.Fatal("result claimed on the dropped connection")
		}
	}
	if !isHello(c2.messages()[0].data) {
		t.Fatal("result sent before hello")
	}
}

func TestBackoffJitteredExponential(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 80, 80}
	for i, w := range want {
		ceil := b.Ceiling()
		if ceil != w*time.Millisecond {
			t.Fatalf("attempt %d ceiling %s, want %s", i, ceil, w*time.Millisecond)
		}
		if d := b.Next(); d < 0 || d > ceil {
			t.Fatalf("attempt %d wait %s outside [0, %s]", i, d, ceil)
		}
	}
	seen := map[time.Duration]bool{}
	for i := 0; i < 50; i++ {
		seen[b.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("backoff is not jittered: %d distinct values", len(seen))
	}
	b.Reset()
	if b.Ceiling() != 10*time.Millisecond {
		t.Fatal("reset")
	}
}

// TestInboundOverLimitRefused: a message above 128 KiB from the peer is
// never handed to the handler; the connection is closed and replaced.
func TestInboundOverLimitRefused(t *testing.T) {
	s := newWSServer(t, 0, 0)
	h := startClient(t, s, nil)
	c1 := s.waitConn(t)
	waitFor(t, "hello", func() bool { return len(c1.messages()) >= 1 })
	// The client may reset the connection before the write completes.
	_ = c1.ws.WriteMessage(1, bytes.Repeat([]byte("x"), protocol.MaxMessageBytes+1))
	c2 := s.waitConn(t)
	if err := c2.ws.WriteMessage(1, []byte(`{"action":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "small message handled", func() bool {
		h.inMu.Lock()
		defer h.inMu.Unlock()
		return len(h.in) == 1
	})
	h.inMu.Lock()
	defer h.inMu.Unlock()
	if len(h.in[0]) > protocol.MaxMessageBytes {
		t.Fatal("oversize message reached the handler")
	}
}
