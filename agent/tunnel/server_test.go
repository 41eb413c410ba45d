package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// teeConn records every byte the client sends (handshake and raw frames).
type teeConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *teeConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *teeConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte{}, c.buf.Bytes()...)
}

type teeListener struct{ net.Listener }

func (l teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &teeConn{Conn: c}, nil
}

// frame is one raw websocket frame as sent by the client.
type frame struct {
	fin     bool
	opcode  byte
	header  int
	payload []byte // unmasked
}

// parseFrames parses the client->server byte stream after the HTTP upgrade.
func parseFrames(raw []byte) ([]frame, error) {
	i := bytes.Index(raw, []byte("\r\n\r\n"))
	if i < 0 {
		return nil, errors.New("no handshake")
	}
	b := raw[i+4:]
	var out []frame
	for len(b) > 0 {
		if len(b) < 2 {
			return out, errors.New("short header")
		}
		f := frame{fin: b[0]&0x80 != 0, opcode: b[0] & 0x0f}
		masked := b[1]&0x80 != 0
		n := uint64(b[1] & 0x7f)
		h := 2
		switch n {
		case 126:
			n = uint64(binary.BigEndian.Uint16(b[2:4]))
			h = 4
		case 127:
			n = binary.BigEndian.Uint64(b[2:10])
			h = 10
		}
		var key []byte
		if masked {
			key = b[h : h+4]
			h += 4
		}
		if uint64(len(b)) < uint64(h)+n {
			return out, errors.New("short payload")
		}
		p := append([]byte{}, b[h:uint64(h)+n]...)
		for j := range p {
			if masked {
				p[j] ^= key[j%4]
			}
		}
		f.header, f.payload = h, p
		out = append(out, f)
		b = b[uint64(h)+n:]
	}
	return out, nil
}

type smsg struct {
	at   time.Time
	data []byte
}

// sconn is the server's view of one connection.
type sconn struct {
	id       int
	ws       *websocket.Conn
	tee      *teeConn
	opened   time.Time
	mu       sync.Mutex
	msgs     []smsg
	closedAt time.Time
	code     int  // close code the client sent (0: none)
	killed   bool // closed by the server (drop, idle, max age)
	query    string
}

func (c *sconn) messages() []smsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]smsg{}, c.msgs...)
}

func (c *sconn) closed() (time.Time, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closedAt, c.code, c.killed
}

// drop closes the TCP connection under the websocket (network failure).
func (c *sconn) drop() {
	c.mu.Lock()
	c.killed = true
	c.mu.Unlock()
	c.tee.Conn.Close()
}

// wsServer is a loopback websocket server that behaves like the API Gateway
// limits it is given (idle timeout, max age) and records everything.
type wsServer struct {
	t       *testing.T
	srv     *httptest.Server
	idle    time.Duration
	maxAge  time.Duration
	onMsg   func(c *sconn, msg []byte)
	mu      sync.Mutex
	conns   []*sconn
	newConn chan *sconn
}

func newWSServer(t *testing.T, idle, maxAge time.Duration) *wsServer {
	s := &wsServer{t: t, idle: idle, maxAge: maxAge, newConn: make(chan *sconn, 100)}
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 32 << 10}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ws.SetReadLimit(128 << 10)
		s.mu.Lock()
		c := &sconn{id: len(s.conns) + 1, ws: ws, tee: ws.UnderlyingConn().(*teeConn), opened: time.Now(), query: r.URL.RawQuery}
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.newConn <- c
		last := make(chan time.Time, 1)
		done := make(chan struct{})
		go s.enforce(c, last, done)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.closedAt = time.Now()
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.code = ce.Code
				}
				c.mu.Unlock()
				close(done)
				ws.Close()
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, smsg{at: time.Now(), data: msg})
			c.mu.Unlock()
			select {
			case last <- time.Now():
			default:
			}
			if s.onMsg != nil {
				s.onMsg(c, msg)
			}
		}
	}))
	s.srv.Listener = teeListener{s.srv.Listener}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// enforce applies the idle timeout (data messages reset it) and max age.
func (s *wsServer) enforce(c *sconn, last <-chan time.Time, done <-chan struct{}) {
	lastData := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case l := <-last:
			lastData = l
		case now := <-tick.C:
			if (s.idle > 0 && now.Sub(lastData) > s.idle) || (s.maxAge > 0 && now.Sub(c.opened) > s.maxAge) {
				c.drop()
				return
			}
		}
	}
}

func (s *wsServer) url() string { return "ws" + s.srv.URL[len("http"):] + "/prod" }

func (s *wsServer) all() []*sconn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*sconn{}, s.conns...)
}

func (s *wsServer) waitConn(t *testing.T) *sconn {
	t.Helper()
	select {
	case c := <-s.newConn:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection within 10s")
		return nil
	}
}

// waitFor polls cond (up to 10 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
