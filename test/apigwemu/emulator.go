package apigwemu

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// errIntegrationTimeout is a handler call that outlived IntegrationTimeout.
var errIntegrationTimeout = errors.New("integration timed out")

// Emulator is one WebSocket API stage with its @connections endpoint.
type Emulator struct {
	opts     Options
	log      *slog.Logger
	verifier *presignVerifier

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	routes  map[string]Handler
	conns   map[string]*conn
	closed  bool
	ln      net.Listener
	srv     *http.Server
	baseURL string
	wg      sync.WaitGroup // connection loops and handler calls
}

var _ http.Handler = (*Emulator)(nil)

// ConnectionInfo describes a live connection.
type ConnectionInfo struct {
	ID           string
	ConnectedAt  time.Time
	LastActiveAt time.Time
	SourceIP     string
	UserAgent    string
	// AccessKey and PrincipalARN are empty for unauthenticated connections.
	AccessKey    string
	PrincipalARN string
}

// New returns an emulator; register routes, then Start it.
func New(opts Options) *Emulator {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Emulator{
		opts:     opts,
		log:      opts.Logger.With("component", "apigwemu", "api_id", opts.APIID, "stage", opts.Stage),
		verifier: newPresignVerifier(opts),
		ctx:      ctx,
		cancel:   cancel,
		routes:   map[string]Handler{},
		conns:    map[string]*conn{},
	}
}

// Route registers (or replaces) the handler of a route key: RouteConnect,
// RouteDisconnect, RouteDefault or a custom key matched against
// $request.body.action. Safe to call while running.
func (e *Emulator) Route(routeKey string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if h == nil {
		delete(e.routes, routeKey)
		return
	}
	e.routes[routeKey] = h
}

func (e *Emulator) handler(routeKey string) Handler {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.routes[routeKey]
}

func (e *Emulator) hasRoute(routeKey string) bool { return e.handler(routeKey) != nil }

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func (e *Emulator) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("apigwemu: listen %s: %w", addr, err)
	}
	e.mu.Lock()
	if e.closed || e.srv != nil {
		e.mu.Unlock()
		_ = ln.Close()
		return errors.New("apigwemu: already started or closed")
	}
	scheme := "http://"
	if e.opts.TLS != nil {
		ln = tls.NewListener(ln, e.opts.TLS)
		scheme = "https://"
	}
	e.ln = ln
	e.baseURL = scheme + ln.Addr().String()
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	srv := e.srv
	e.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("serve", "err", err)
		}
	}()
	e.log.Info("started", "addr", ln.Addr().String())
	return nil
}

// URL is the websocket stage URL, ws://127.0.0.1:PORT/STAGE (wss:// with
// Options.TLS); clients presign its https form, see PresignURL.
func (e *Emulator) URL() string {
	return "ws" + strings.TrimPrefix(e.base(), "http") + "/" + e.opts.Stage
}

// ManagementURL is the @connections endpoint base, http://127.0.0.1:PORT/STAGE
// (https:// with Options.TLS),
// to be used as the apigatewaymanagementapi client's BaseEndpoint.
func (e *Emulator) ManagementURL() string { return e.base() + "/" + e.opts.Stage }

// APIID is the API id reported in events.
func (e *Emulator) APIID() string { return e.opts.APIID }

func (e *Emulator) base() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.baseURL
}

// Connections lists live connections sorted by id.
func (e *Emulator) Connections() []ConnectionInfo {
	e.mu.Lock()
	cs := make([]*conn, 0, len(e.conns))
	for _, c := range e.conns {
		cs = append(cs, c)
	}
	e.mu.Unlock()
	out := make([]ConnectionInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.info())
	}
	slices.SortFunc(out, func(a, b ConnectionInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (e *Emulator) lookup(id string) *conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.conns[id]
}

// Close stops accepting, closes every connection with 1001 (invoking
// $disconnect for each), waits for in-flight handler calls and returns.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	srv := e.srv
	cs := make([]*conn, 0, len(e.conns))
	for _, c := range e.conns {
		cs = append(cs, c)
	}
	e.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	for _, c := range cs {
		c.initiateClose(CloseGoingAway, "Going away", "shutdown")
	}
	e.wg.Wait()
	e.cancel()
	e.log.Info("closed")
	return err
}

// ServeHTTP routes the stage URL (websocket upgrade) and the @connections
// API; everything else is 403 Forbidden as on the real endpoint.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	stage := "/" + e.opts.Stage
	switch {
	case r.URL.Path == stage || r.URL.Path == stage+"/":
		e.serveConnect(w, r)
	case strings.HasPrefix(r.URL.Path, stage+"/@connections/"):
		e.serveManagement(w, r, strings.TrimPrefix(r.URL.Path, stage+"/@connections/"))
	default:
		writeError(w, http.StatusForbidden, "", "Forbidden")
	}
}

// invoke calls the route's handler with the integration timeout. ok is
// false when no handler is registered.
func (e *Emulator) invoke(routeKey string, ev events.APIGatewayWebsocketProxyRequest) (resp events.APIGatewayProxyResponse, ok bool, err error) {
	h := e.handler(routeKey)
	if h == nil {
		return resp, false, nil
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.IntegrationTimeout)
	defer cancel()
	type result struct {
		resp events.APIGatewayProxyResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("handler %s panicked: %v", routeKey, p)}
			}
		}()
		r, err := h(ctx, ev)
		done <- result{r, err}
	}()
	select {
	case res := <-done:
		return res.resp, true, res.err
	case <-ctx.Done():
		return resp, true, fmt.Errorf("%w: %s: %w", errIntegrationTimeout, routeKey, ctx.Err())
	}
}

// writeError writes an API Gateway style JSON error.
func writeError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if errType != "" {
		w.Header().Set("x-amzn-ErrorType", errType)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// executeAPIARN is the IAM resource of a route or @connections path of this
// API: arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<rest>.
func (e *Emulator) executeAPIARN(rest string) string {
	return "arn:aws:execute-api:" + e.opts.Region + ":" + e.opts.Account + ":" + e.opts.APIID + "/" + e.opts.Stage + "/" + rest
}
