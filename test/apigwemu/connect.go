package apigwemu

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// serveConnect handles a websocket upgrade on the stage URL: validate the
// handshake, authorise the presign, invoke $connect, then upgrade. Nothing
// is recorded and $connect is not invoked unless authorisation passed.
func (e *Emulator) serveConnect(w http.ResponseWriter, r *http.Request) {
	log := e.log.With("remote", r.RemoteAddr)
	if err := checkHandshake(r); err != nil {
		log.Info("connect refused", "reason", "handshake", "err", err)
		writeError(w, http.StatusBadRequest, "", "Bad Request")
		return
	}
	var p *principal
	if !e.opts.AllowUnauthenticated {
		got, err := e.verifier.verify(r.Context(), r)
		if err != nil {
			log.Info("connect refused", "reason", "sigv4", "err", err)
			writeError(w, http.StatusForbidden, "", "Forbidden")
			return
		}
		p = &got
		if e.opts.Authorize != nil {
			if err := e.opts.Authorize(r.Context(), got.AccessKey, "execute-api:Invoke", e.executeAPIARN(RouteConnect)); err != nil {
				log.Info("connect refused", "reason", "iam", "err", err)
				writeError(w, http.StatusForbidden, "", "Forbidden")
				return
			}
		}
	}
	now := e.opts.Clock()
	c := &conn{
		e:           e,
		id:          newID(),
		connectedAt: now,
		lastActive:  now,
		sourceIP:    hostOnly(r.RemoteAddr),
		userAgent:   r.UserAgent(),
		domain:      r.Host,
		principal:   p,
		query:       r.URL.Query(),
		headers:     connectHeaders(r, hostOnly(r.RemoteAddr), now),
	}
	log = log.With("connection_id", c.id)
	resp, ok, err := e.invoke(RouteConnect, c.connectEvent(now))
	switch {
	case err != nil:
		log.Info("connect refused", "reason", "handler error", "err", err)
		writeError(w, http.StatusInternalServerError, "", "Internal server error")
		return
	case ok && (resp.StatusCode < 200 || resp.StatusCode > 299):
		log.Info("connect refused", "reason", "handler", "status", resp.StatusCode)
		writeError(w, http.StatusForbidden, "", "Forbidden")
		return
	}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		writeError(w, http.StatusGone, "", "Gone")
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()

	hj, isHJ := w.(http.Hijacker)
	if !isHJ {
		writeError(w, http.StatusInternalServerError, "", "Internal server error")
		return
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		log.Error("hijack", "err", err)
		return
	}
	var hs strings.Builder
	hs.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	fmt.Fprintf(&hs, "Sec-WebSocket-Accept: %s\r\n", acceptKey(r.Header.Get("Sec-WebSocket-Key")))
	if proto := headerValue(resp.Headers, resp.MultiValueHeaders, "Sec-WebSocket-Protocol"); proto != "" {
		fmt.Fprintf(&hs, "Sec-WebSocket-Protocol: %s\r\n", proto)
	}
	hs.WriteString("\r\n")
	c.nc = nc
	c.br = brw.Reader
	if c.br == nil {
		c.br = bufio.NewReader(nc)
	}
	// Register before the 101 goes out, holding the write lock, so a
	// PostToConnection racing the client's first read is not Gone and is
	// written after the handshake.
	c.writeMu.Lock()
	e.mu.Lock()
	if e.closed { // Close took its snapshot already: do not start.
		e.mu.Unlock()
		c.writeMu.Unlock()
		_ = nc.Close()
		return
	}
	e.conns[c.id] = c
	e.mu.Unlock()
	_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = nc.Write([]byte(hs.String()))
	c.writeMu.Unlock()
	if err != nil {
		log.Info("upgrade write", "err", err)
		c.abnormal(err)
		c.finish()
		return
	}
	c.startTimers()
	log.Info("connected", "access_key", c.identity().AccessKey)
	c.serve()
}

// checkHandshake validates an RFC 6455 opening handshake request.
func checkHandshake(r *http.Request) error {
	if r.Method != http.MethodGet {
		return fmt.Errorf("method %s", r.Method)
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return fmt.Errorf("not a websocket upgrade")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		return fmt.Errorf("Sec-WebSocket-Version %q", v)
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return fmt.Errorf("bad Sec-WebSocket-Key")
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// headerValue finds a response header case-insensitively.
func headerValue(single map[string]string, multi map[string][]string, name string) string {
	for k, v := range single {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, vs := range multi {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// connectHeaders are the upgrade request's headers as API Gateway forwards
// them: the client's (hop-by-hop Connection/Upgrade dropped) plus the
// X-Forwarded-* and X-Amzn-Trace-Id its front end adds.
func connectHeaders(r *http.Request, sourceIP string, now time.Time) http.Header {
	h := http.Header{}
	for k, vs := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Upgrade":
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	h.Set("Host", r.Host)
	h.Set("X-Amzn-Trace-Id", newTraceID(now.Unix()))
	h.Set("X-Forwarded-For", sourceIP)
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		h.Set("X-Forwarded-Port", port)
	} else {
		h.Set("X-Forwarded-Port", "443")
	}
	h.Set("X-Forwarded-Proto", "https")
	return h
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
