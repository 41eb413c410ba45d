package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/keyferry/keyferry/shared/protocol"
)

// maxFrameHeader is the largest websocket frame header a client writes
// (2 fixed + 8 length + 4 mask bytes).
const maxFrameHeader = 14

// FramePayloadBytes is the payload carried per frame: header plus payload
// stay within protocol.MaxFrameBytes.
const FramePayloadBytes = protocol.MaxFrameBytes - maxFrameHeader

// MaxQueued bounds the outgoing queue.
const MaxQueued = 10000

// Errors.
var (
	// ErrTooLarge: the message exceeds protocol.MaxMessageBytes and is never sent.
	ErrTooLarge = errors.New("tunnel: message too large")
	// ErrQueueFull: MaxQueued messages are waiting for a connection.
	ErrQueueFull = errors.New("tunnel: outgoing queue full")
)

// Observer receives connection events (metrics).
type Observer interface {
	// Connected reports whether a connection is currently active.
	Connected(up bool)
	// Reconnect counts a new connection after a drop ("drop") or a
	// proactive recycle ("recycle").
	Reconnect(reason string)
}

// Config configures a Client.
type Config struct {
	// Endpoint is the stage URL (https://... or wss://...; ws:// for loopback tests).
	Endpoint string
	// Presigner presigns Endpoint before each dial; nil dials Endpoint as is.
	Presigner Presigner
	// HeartbeatInterval between application-level heartbeats.
	HeartbeatInterval time.Duration
	// MaxConnectionAge: the connection is replaced (with overlap) at
	// MaxConnectionAge minus a lead of a tenth of it (at most 5 minutes).
	MaxConnectionAge time.Duration
	// BackoffInitial and BackoffMax bound the jittered exponential backoff.
	BackoffInitial, BackoffMax time.Duration
	// RecycleLead is how long before MaxConnectionAge the replacement
	// connection is opened (default: a tenth of the age, at most 5 minutes).
	RecycleLead time.Duration
	// HandshakeTimeout bounds the websocket handshake and each write.
	HandshakeTimeout time.Duration
	// Hello returns the sealed hello sent first on every new connection.
	Hello func(ctx context.Context) ([]byte, error)
	// Heartbeat returns a sealed heartbeat.
	Heartbeat func(ctx context.Context, seq uint64) ([]byte, error)
	// Handle is called (from the connection's reader) for each inbound
	// message; it must not block for long.
	Handle func(ctx context.Context, msg []byte)
	Logger *slog.Logger
	// Observer may be nil.
	Observer Observer
	// Header is sent with the handshake (optional).
	Header http.Header
}

// Client keeps one active websocket and a queue of outgoing messages.
type Client struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	out    *Outbox
	active *conn
	nextID int

	hbSeq atomic.Uint64
}

// New checks cfg and returns a Client; call Run to connect.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Endpoint == "":
		return nil, errors.New("tunnel: no endpoint")
	case cfg.HeartbeatInterval <= 0, cfg.MaxConnectionAge <= cfg.HeartbeatInterval:
		return nil, errors.New("tunnel: need 0 < heartbeat interval < max connection age")
	case cfg.BackoffInitial <= 0 || cfg.BackoffMax < cfg.BackoffInitial:
		return nil, errors.New("tunnel: need 0 < backoff initial <= backoff max")
	case cfg.Hello == nil || cfg.Heartbeat == nil || cfg.Handle == nil:
		return nil, errors.New("tunnel: Hello, Heartbeat and Handle are required")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Client{cfg: cfg, log: log.With("component", "tunnel"), out: NewOutbox()}, nil
}

// Send queues msg for the active (or next) connection. Messages above
// protocol.MaxMessageBytes are refused with ErrTooLarge. Delivery is at
// least once: a message written on a connection that then dies before the
// peer acknowledged it (websocket ping/pong barrier or close handshake) is
// sent again on the next connection, so receivers must be idempotent (wrap
// results carry their request id).
func (cl *Client) Send(msg []byte) error { return cl.enqueue(msg, true) }

func (cl *Client) enqueue(msg []byte, reliable bool) error {
	if len(msg) > protocol.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(msg), protocol.MaxMessageBytes)
	}
	if err := cl.out.Push(msg, reliable); err != nil {
		return err
	}
	if a := cl.currentActive(); a != nil {
		a.notify()
	}
	return nil
}

// Queued returns the number of messages waiting to be written or
// acknowledged.
func (cl *Client) Queued() int { return cl.out.Pending() }

// Connected reports whether a connection is active.
func (cl *Client) Connected() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.active != nil
}

// Flush waits until every queued message has been written and acknowledged
// by the peer, or ctx ends.
func (cl *Client) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for cl.Queued() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("tunnel: flush with %d messages unsent: %w", cl.Queued(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func (cl *Client) recycleAfter() time.Duration {
	lead := cl.cfg.RecycleLead
	if lead <= 0 || lead >= cl.cfg.MaxConnectionAge {
		lead = min(cl.cfg.MaxConnectionAge/10, 5*time.Minute)
	}
	return cl.cfg.MaxConnectionAge - lead
}

// Run connects and keeps a connection until ctx ends, then closes it.
func (cl *Client) Run(ctx context.Context) error {
	go cl.heartbeats(ctx)
	bo := Backoff{Initial: cl.cfg.BackoffInitial, Max: cl.cfg.BackoffMax}
	var cur *conn
	reason := ""
	for {
		if ctx.Err() != nil {
			if cur != nil {
				cl.deactivate(cur)
				cl.retire(cur)
			}
			return nil
		}
		nc, err := cl.connect(ctx)
		if err != nil {
			wait := bo.Next()
			cl.log.Warn("tunnel connect failed", "err", err, "retry_in", wait.String())
			if !cl.waitOrDead(ctx, wait, cur) {
				cur, reason = nil, "drop"
			}
			if cur != nil && time.Since(cur.opened) >= cl.cfg.MaxConnectionAge {
				cur.kill(errors.New("maximum connection age reached"))
			}
			continue
		}
		old := cur
		if old != nil {
			// Overlap: keep the old connection until the peer has
			// provably read the new connection's hello.
			select {
			case <-nc.helloAck:
			case <-nc.dead:
			case <-time.After(min(cl.cfg.HandshakeTimeout, 2*time.Second)):
				cl.log.Warn("tunnel: no pong for the hello barrier; recycling anyway", "conn", nc.id)
			case <-ctx.Done():
			}
		}
		if old != nil {
			// The new writer takes nothing until old's owed messages are
			// acknowledged or back in the queue (order kept).
			cl.out.Retire(old.id)
		}
		cl.activate(nc)
		if reason != "" && cl.cfg.Observer != nil {
			cl.cfg.Observer.Reconnect(reason)
		}
		if old != nil {
			cl.log.Info("tunnel recycled", "old_conn", old.id, "new_conn", nc.id, "old_age", time.Since(old.opened).Round(time.Millisecond).String())
			go cl.retire(old)
		}
		cur = nc
		recycle := time.NewTimer(cl.recycleAfter())
		select {
		case <-ctx.Done():
			recycle.Stop()
		case <-cur.dead:
			recycle.Stop()
			lived := time.Since(cur.opened)
			cl.lost(cur)
			cl.log.Warn("tunnel connection lost", "conn", cur.id, "err", cur.errString(), "lived", lived.Round(time.Millisecond).String())
			if lived > cl.cfg.HeartbeatInterval {
				bo.Reset()
			}
			cur, reason = nil, "drop"
			cl.waitOrDead(ctx, bo.Next(), nil)
		case <-recycle.C:
			reason = "recycle"
		}
	}
}

// waitOrDead sleeps d; it returns false early if cur (non-nil) dies.
func (cl *Client) waitOrDead(ctx context.Context, d time.Duration, cur *conn) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var dead <-chan struct{}
	if cur != nil {
		dead = cur.dead
	}
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-dead:
		cl.lost(cur)
		return false
	}
	return true
}

func (cl *Client) heartbeats(ctx context.Context) {
	t := time.NewTicker(cl.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !cl.Connected() {
			continue
		}
		msg, err := cl.cfg.Heartbeat(ctx, cl.hbSeq.Add(1))
		if err != nil {
			cl.log.Error("build heartbeat", "err", err)
			continue
		}
		if err := cl.enqueue(msg, false); err != nil {
			cl.log.Warn("queue heartbeat", "err", err)
		}
	}
}

// connect dials, sends hello and starts the reader; the connection is not
// yet active.
func (cl *Client) connect(ctx context.Context) (*conn, error) {
	target := cl.cfg.Endpoint
	if cl.cfg.Presigner != nil {
		u, err := cl.cfg.Presigner.Presign(ctx, cl.cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		target = u
	}
	d := websocket.Dialer{
		HandshakeTimeout: cl.cfg.HandshakeTimeout,
		ReadBufferSize:   protocol.MaxFrameBytes,
		WriteBufferSize:  FramePayloadBytes,
		Proxy:            http.ProxyFromEnvironment,
	}
	ws, resp, err := d.DialContext(ctx, target, cl.cfg.Header)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("tunnel: dial: %w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("tunnel: dial: %w", err)
	}
	ws.SetReadLimit(protocol.MaxMessageBytes)
	cl.mu.Lock()
	cl.nextID++
	c := &conn{id: cl.nextID, ws: ws, opened: time.Now(), dead: make(chan struct{}), wake: make(chan struct{}, 1),
		retireCh: make(chan struct{}), writerDone: make(chan struct{}), readerDone: make(chan struct{}), timeout: cl.cfg.HandshakeTimeout}
	cl.mu.Unlock()
	c.helloAck = make(chan struct{})
	var helloOnce sync.Once
	ws.SetPongHandler(func(data string) error {
		if len(data) == 8 {
			seq := binary.BigEndian.Uint64([]byte(data))
			if seq == 0 {
				helloOnce.Do(func() { close(c.helloAck) })
			}
			cl.out.Ack(c.id, seq)
			if a := cl.currentActive(); a != nil && a != c {
				a.notify() // a retiring connection's acks may unblock the active writer
			}
		}
		return nil
	})
	hello, err := cl.cfg.Hello(ctx)
	if err == nil {
		err = c.write(hello)
	}
	if err != nil {
		ws.Close()
		return nil, fmt.Errorf("tunnel: hello: %w", err)
	}
	go cl.reader(ctx, c)
	c.ping(0) // hello barrier: the pong proves the peer read the hello
	cl.log.Info("tunnel connected", "conn", c.id)
	return c, nil
}

func (cl *Client) activate(c *conn) {
	cl.mu.Lock()
	cl.active = c
	cl.mu.Unlock()
	go cl.writer(c)
	c.notify()
	if cl.cfg.Observer != nil {
		cl.cfg.Observer.Connected(true)
	}
}

// lost handles a dead connection: deactivate it, let its writer stop, and
// put what the peer never acknowledged back in the queue.
func (cl *Client) lost(c *conn) {
	cl.deactivate(c)
	<-c.writerDone
	cl.settle(c, false)
}

func (cl *Client) deactivate(c *conn) {
	cl.mu.Lock()
	was := cl.active == c
	if was {
		cl.active = nil
	}
	cl.mu.Unlock()
	if was && cl.cfg.Observer != nil {
		cl.cfg.Observer.Connected(false)
	}
}

// retire stops c's writer after its current message, then closes c with a
// close frame (in-flight results went out before the close).
func (cl *Client) retire(c *conn) {
	c.retireOnce.Do(func() { close(c.retireCh) })
	<-c.writerDone
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "recycle"), time.Now().Add(time.Second))
	c.wmu.Unlock()
	delivered := false
	select {
	case <-c.readerDone:
		delivered = c.closedCleanly() // the peer echoed our close: it read everything
	case <-time.After(2 * time.Second):
	}
	c.kill(errors.New("retired"))
	cl.settle(c, delivered)
	if a := cl.currentActive(); a != nil {
		a.notify()
	}
}

func (cl *Client) currentActive() *conn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.active
}

// settle hands c's owed messages back to the outbox (or drops them when
// delivered).
func (cl *Client) settle(c *conn, delivered bool) {
	if n := cl.out.Settle(c.id, delivered); n > 0 {
		cl.log.Info("tunnel re-sending unacknowledged messages", "conn", c.id, "count", n)
	}
}

func (cl *Client) writer(c *conn) {
	defer close(c.writerDone)
	for {
		select {
		case <-c.retireCh:
			return
		case <-c.dead:
			return
		default:
		}
		if cl.currentActive() != c {
			return
		}
		it, ok := cl.out.Next(c.id)
		if !ok {
			select {
			case <-c.wake:
			case <-c.retireCh:
				return
			case <-c.dead:
				return
			}
			continue
		}
		err := c.write(it.data)
		seq := cl.out.Written(c.id, it, err)
		if err != nil {
			c.kill(err)
			return
		}
		if seq > 0 {
			// Ack barrier: the peer answers the ping after reading
			// everything written before it.
			c.ping(seq)
		}
	}
}

func (cl *Client) reader(ctx context.Context, c *conn) {
	defer close(c.readerDone)
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
				c.setClean()
			}
			c.kill(err)
			return
		}
		cl.cfg.Handle(ctx, msg)
	}
}

// conn is one websocket connection.
type conn struct {
	id      int
	ws      *websocket.Conn
	opened  time.Time
	timeout time.Duration
	wmu     sync.Mutex

	wake       chan struct{}
	helloAck   chan struct{}
	retireCh   chan struct{}
	retireOnce sync.Once
	writerDone chan struct{}
	readerDone chan struct{}

	dead     chan struct{}
	deadOnce sync.Once
	errMu    sync.Mutex
	err      error
	clean    bool
}

func (c *conn) ping(seq uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteControl(websocket.PingMessage, b[:], time.Now().Add(c.timeout))
}

func (c *conn) setClean() {
	c.errMu.Lock()
	c.clean = true
	c.errMu.Unlock()
}

func (c *conn) closedCleanly() bool {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.clean
}

func (c *conn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// write sends msg as one websocket message split into frames of at most
// FramePayloadBytes (the write buffer size) each.
func (c *conn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.timeout))
	w, err := c.ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return fmt.Errorf("tunnel: write: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("tunnel: write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("tunnel: write: %w", err)
	}
	return nil
}

func (c *conn) kill(err error) {
	c.deadOnce.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.dead)
		c.ws.Close()
	})
}

func (c *conn) errString() string {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	if c.err == nil {
		return ""
	}
	return c.err.Error()
}
