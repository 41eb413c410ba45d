// Package ddbfault is a fault-injecting reverse proxy for the DynamoDB JSON
// protocol (awsJson1_0, X-Amz-Target DynamoDB_20120810.<Op>), placed in
// front of moto_server by the soak and by tests. It injects what a real
// DynamoDB endpoint does to a client under stress: 5xx and throttling
// answers, lost conditional races, timeouts (a request that hangs and never
// arrives), added latency, and answers lost after the write took effect.
// It is test-only: product code reaches it through the ordinary endpoint
// setting (AWS_ENDPOINT_URL_DYNAMODB) and has no hook of its own.
package ddbfault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Action says what to do with one request. The zero Action forwards it.
type Action struct {
	// Delay is slept before anything else (latency; with Abort, a timeout).
	Delay time.Duration
	// ErrorType answers with this DynamoDB error without forwarding, e.g.
	// "InternalServerError" (500), "ProvisionedThroughputExceededException",
	// "ThrottlingException", "ConditionalCheckFailedException" or
	// "TransactionCanceledException" (400). The write does not happen.
	ErrorType string
	// Message goes with ErrorType.
	Message string
	// Abort closes the connection without forwarding and without an
	// answer: the request never reached DynamoDB.
	Abort bool
	// DropResponse forwards the request (it takes effect), then closes the
	// connection without the answer: the caller cannot tell it happened.
	DropResponse bool
}

// Func decides per request. op is the operation ("UpdateItem"), body the
// raw JSON request. It must be safe for concurrent use; nil means forward.
type Func func(op string, body []byte) *Action

// Proxy is a running fault proxy.
type Proxy struct {
	srv    *http.Server
	ln     net.Listener
	target *url.URL
	rp     *httputil.ReverseProxy
	fault  Func
}

// Start listens on a free 127.0.0.1 port and forwards to target (an
// http:// endpoint such as moto_server's).
func Start(target string, fault Func) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("ddbfault: target %q is not an http://host:port endpoint", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ddbfault: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: u, fault: fault, rp: httputil.NewSingleHostReverseProxy(u)}
	p.rp.ErrorLog = nil
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's endpoint.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

// Operation returns the DynamoDB operation named by an X-Amz-Target header
// ("DynamoDB_20120810.PutItem" -> "PutItem"), or "" when it names none.
func Operation(target string) string {
	svc, op, ok := strings.Cut(target, ".")
	if !ok || !strings.HasPrefix(svc, "DynamoDB_") {
		return ""
	}
	return op
}

// Conditional reports whether a write request carries a condition (the
// requests a lost race can refuse): a ConditionExpression anywhere in it.
func Conditional(body []byte) bool {
	return bytes.Contains(body, []byte(`"ConditionExpression"`))
}

// errorStatus is the HTTP status DynamoDB uses for an error type.
func errorStatus(errType string) int {
	switch errType {
	case "InternalServerError", "InternalFailure", "ServiceUnavailable":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, "ddbfault: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var a *Action
	if op := Operation(r.Header.Get("X-Amz-Target")); op != "" && p.fault != nil {
		a = p.fault(op, body)
	}
	if a == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	if a.Delay > 0 {
		select {
		case <-time.After(a.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case a.Abort:
		panic(http.ErrAbortHandler)
	case a.ErrorType != "":
		writeError(w, a.ErrorType, a.Message)
	case a.DropResponse:
		rec := &discard{header: http.Header{}}
		p.rp.ServeHTTP(rec, r)
		panic(http.ErrAbortHandler)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// writeError answers as DynamoDB does (awsJson1_0 error shape).
func writeError(w http.ResponseWriter, errType, msg string) {
	if msg == "" {
		msg = "injected by ddbfault"
	}
	doc := map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#" + errType, "message": msg}
	if errType == "TransactionCanceledException" {
		doc["CancellationReasons"] = []map[string]string{{"Code": "ConditionalCheckFailed", "Message": msg}}
	}
	b, _ := json.Marshal(doc) // strings only: cannot fail
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-RequestId", "ddbfault")
	w.WriteHeader(errorStatus(errType))
	_, _ = w.Write(b)
}

// discard is a ResponseWriter that keeps nothing (the answer is dropped).
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
