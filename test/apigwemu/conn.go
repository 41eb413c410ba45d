package apigwemu

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
	"unicode/utf8"
)

// errGone is a post to a connection that is closed or closing.
var errGone = errors.New("connection gone")

// writeTimeout bounds every write to a client.
const writeTimeout = 10 * time.Second

// conn is one accepted websocket connection.
type conn struct {
	e           *Emulator
	id          string
	nc          net.Conn
	br          *bufio.Reader
	connectedAt time.Time
	sourceIP    string
	userAgent   string
	domain      string
	principal   *principal
	query       url.Values
	headers     http.Header

	writeMu sync.Mutex

	mu          sync.Mutex
	lastActive  time.Time
	closing     bool
	closeCode   int
	closeReason string
	closeCause  string
	idle        *time.Timer
	age         *time.Timer
	heldIn      []heldMessage
	heldOut     [][]byte
}

type heldMessage struct {
	route  string
	binary bool
	body   []byte
}

func (c *conn) info() ConnectionInfo {
	c.mu.Lock()
	last := c.lastActive
	c.mu.Unlock()
	ci := ConnectionInfo{ID: c.id, ConnectedAt: c.connectedAt, LastActiveAt: last, SourceIP: c.sourceIP, UserAgent: c.userAgent}
	if c.principal != nil {
		ci.AccessKey = c.principal.AccessKey
		ci.PrincipalARN = c.principal.Cred.PrincipalARN
	}
	return ci
}

func (c *conn) startTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = time.AfterFunc(c.e.opts.IdleTimeout, func() { c.initiateClose(CloseGoingAway, "Going away", "idle timeout") })
	c.age = time.AfterFunc(c.e.opts.MaxAge, func() { c.initiateClose(CloseGoingAway, "Going away", "maximum connection age") })
}

// touch records client data activity and restarts the idle timer.
func (c *conn) touch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastActive = c.e.opts.Clock()
	if c.idle != nil && !c.closing {
		c.idle.Reset(c.e.opts.IdleTimeout)
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// initiateClose starts a server-side close: it records the status reported
// to $disconnect, sends the close frame and gives the client CloseGrace to
// answer. The read loop finishes the connection. Safe from any goroutine;
// only the first call has an effect.
func (c *conn) initiateClose(code int, reason, cause string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.closeCode, c.closeReason, c.closeCause = true, code, reason, cause
	c.mu.Unlock()
	_ = c.writeFrames(appendFrame(nil, true, opClose, closePayload(code, reason)))
	_ = c.nc.SetReadDeadline(time.Now().Add(c.e.opts.CloseGrace))
}

// failClose closes after a client error that leaves the stream unusable:
// send the close frame, then discard input until the client goes or the
// grace period ends.
func (c *conn) failClose(code int, reason, cause string) {
	c.initiateClose(code, reason, cause)
	_, _ = io.Copy(io.Discard, c.br)
}

func (c *conn) writeFrames(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.nc.Write(b)
	return err
}

// serve is the read loop; it owns the connection until it ends.
func (c *conn) serve() {
	defer c.finish()
	var (
		msg   []byte
		msgOp byte
		inMsg bool
	)
	for {
		h, err := readFrameHeader(c.br, MaxFrameSize)
		var pe *protocolError
		switch {
		case errors.Is(err, errFrameTooBig):
			c.failClose(CloseMessageTooBig, "Message too big", "frame over 32 KB")
			return
		case errors.As(err, &pe):
			c.failClose(CloseProtocolError, "Protocol error", pe.msg)
			return
		case err != nil:
			c.abnormal(err)
			return
		}
		if !h.masked || h.rsv != 0 {
			c.failClose(CloseProtocolError, "Protocol error", "unmasked frame or reserved bits")
			return
		}
		if h.opcode&0x8 != 0 { // control frame
			if !h.fin || h.length > maxControlPayloadLen {
				c.failClose(CloseProtocolError, "Protocol error", "fragmented or long control frame")
				return
			}
			p, err := readPayload(c.br, h)
			if err != nil {
				c.abnormal(err)
				return
			}
			switch h.opcode {
			case opClose:
				c.clientClose(p)
				return
			case opPing:
				if !c.isClosing() {
					_ = c.writeFrames(appendFrame(nil, true, opPong, p))
				}
			case opPong:
			default:
				c.failClose(CloseProtocolError, "Protocol error", "unknown control opcode")
				return
			}
			continue
		}
		switch h.opcode {
		case opContinuation:
			if !inMsg {
				c.failClose(CloseProtocolError, "Protocol error", "continuation without a message")
				return
			}
		case opText, opBinary:
			if inMsg {
				c.failClose(CloseProtocolError, "Protocol error", "new message inside a fragmented one")
				return
			}
			inMsg, msgOp, msg = true, h.opcode, nil
		default:
			c.failClose(CloseProtocolError, "Protocol error", "unknown data opcode")
			return
		}
		if uint64(len(msg))+h.length > MaxMessageSize {
			c.failClose(CloseMessageTooBig, "Message too big", "message over 128 KB")
			return
		}
		p, err := readPayload(c.br, h)
		if err != nil {
			c.abnormal(err)
			return
		}
		msg = append(msg, p...)
		if !h.fin {
			continue
		}
		inMsg = false
		if msgOp == opText && !utf8.Valid(msg) {
			c.failClose(CloseInvalidPayload, "Invalid frame payload data", "text message not UTF-8")
			return
		}
		c.receive(msgOp == opBinary, msg)
	}
}

// clientClose answers a client's close frame.
func (c *conn) clientClose(p []byte) {
	code, reason, err := parseClosePayload(p)
	c.mu.Lock()
	already := c.closing
	if !already {
		c.closing, c.closeCode, c.closeReason, c.closeCause = true, code, reason, "client close"
		if err != nil {
			c.closeCode, c.closeReason = CloseProtocolError, ""
		}
	}
	c.mu.Unlock()
	if already {
		return // the client acknowledged our close
	}
	echo := closePayload(code, "")
	if err != nil {
		echo = closePayload(CloseProtocolError, "")
	}
	_ = c.writeFrames(appendFrame(nil, true, opClose, echo))
}

// abnormal records a connection lost without a close handshake (unless a
// close was already under way).
func (c *conn) abnormal(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.closing, c.closeCode, c.closeReason, c.closeCause = true, CloseAbnormal, "", "connection lost: "+err.Error()
	}
}

// finish tears the connection down and invokes $disconnect.
func (c *conn) finish() {
	c.mu.Lock()
	if c.idle != nil {
		c.idle.Stop()
	}
	if c.age != nil {
		c.age.Stop()
	}
	code, reason, cause := c.closeCode, c.closeReason, c.closeCause
	c.heldIn, c.heldOut = nil, nil
	c.mu.Unlock()
	_ = c.nc.Close()
	c.e.mu.Lock()
	delete(c.e.conns, c.id)
	c.e.mu.Unlock()
	c.e.log.Info("disconnected", "connection_id", c.id, "code", code, "cause", cause)
	if _, _, err := c.e.invoke(RouteDisconnect, c.disconnectEvent(code, reason, c.e.opts.Clock())); err != nil {
		c.e.log.Info("disconnect handler", "connection_id", c.id, "err", err)
	}
}

// receive routes one client message, applying the fault hook.
func (c *conn) receive(binary bool, body []byte) {
	c.touch()
	if c.isClosing() {
		return
	}
	route := selectRoute(body, binary, c.e.hasRoute)
	action := Deliver
	if f := c.e.opts.Fault; f != nil {
		action = f(FaultPoint{Direction: Inbound, ConnectionID: c.id, RouteKey: route, Data: body})
	}
	switch action {
	case Drop, Gone:
		return
	case Hold:
		c.mu.Lock()
		c.heldIn = append(c.heldIn, heldMessage{route, binary, body})
		c.mu.Unlock()
		return
	case Duplicate:
		c.dispatch(route, binary, body)
	}
	c.dispatch(route, binary, body)
	c.mu.Lock()
	held := c.heldIn
	c.heldIn = nil
	c.mu.Unlock()
	for _, m := range held {
		c.dispatch(m.route, m.binary, m.body)
	}
}

// dispatch invokes the route's handler asynchronously (API Gateway does not
// order integration calls) and sends back API Gateway's error message, or a
// non-empty response body when Options.RouteResponses is set.
func (c *conn) dispatch(route string, binary bool, body []byte) {
	ev := c.messageEvent(route, binary, body, c.e.opts.Clock())
	c.e.wg.Add(1)
	go func() {
		defer c.e.wg.Done()
		resp, ok, err := c.e.invoke(route, ev)
		var out []byte
		switch {
		case !ok:
			out = gatewayMessage("Forbidden", c.id, ev.RequestContext.RequestID)
		case err != nil:
			c.e.log.Info("route handler", "connection_id", c.id, "route", route, "err", err)
			msg := "Internal server error"
			if errors.Is(err, errIntegrationTimeout) {
				msg = "Endpoint request timed out"
			}
			out = gatewayMessage(msg, c.id, ev.RequestContext.RequestID)
		case resp.Body != "" && c.e.opts.RouteResponses:
			out = []byte(resp.Body)
			if resp.IsBase64Encoded {
				if dec, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
					out = dec
				}
			}
		}
		if out != nil {
			_ = c.send(out, false)
		}
	}()
}

// gatewayMessage is the JSON API Gateway sends a client when a route fails.
func gatewayMessage(msg, connID, reqID string) []byte {
	b, _ := json.Marshal(map[string]string{"message": msg, "connectionId": connID, "requestId": reqID})
	return b
}

// send delivers data to the client as a text message fragmented at 32 KB,
// applying the fault hook. It returns errGone if the connection is closing
// (or the hook answers Gone for a post).
func (c *conn) send(data []byte, fromPost bool) error {
	if c.isClosing() {
		return errGone
	}
	action := Deliver
	if f := c.e.opts.Fault; f != nil {
		action = f(FaultPoint{Direction: Outbound, ConnectionID: c.id, Data: data, FromPost: fromPost})
	}
	switch action {
	case Gone:
		if fromPost {
			return errGone
		}
		return nil
	case Drop:
		return nil
	case Hold:
		c.mu.Lock()
		c.heldOut = append(c.heldOut, data)
		c.mu.Unlock()
		return nil
	}
	frames := appendMessage(nil, opText, data, MaxFrameSize)
	if action == Duplicate {
		frames = append(frames, frames...)
	}
	c.mu.Lock()
	for _, h := range c.heldOut {
		frames = appendMessage(frames, opText, h, MaxFrameSize)
	}
	c.heldOut = nil
	c.mu.Unlock()
	if err := c.writeFrames(frames); err != nil {
		return errGone
	}
	return nil
}
