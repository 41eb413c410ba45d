package iamsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
)

// Call is one authorization a request needs: an action on a resource with
// the condition keys the request carries, and the resource's own policy
// (a KMS key policy) when it has one.
type Call struct {
	Action         string
	Resource       string
	Context        map[string]any
	ResourcePolicy json.RawMessage
}

// Classifier reads a service's request: which calls it needs, and how the
// service says "denied".
type Classifier interface {
	// Classify returns the calls target (the X-Amz-Target operation) with
	// body needs.
	Classify(ctx context.Context, target string, body []byte) ([]Call, error)
	// Deny writes the service's AccessDeniedException.
	Deny(w http.ResponseWriter, message string)
}

// Gate authorizes every request to one service endpoint before passing
// it on.
type Gate struct {
	Service string
	eval    *Evaluator
	class   Classifier
	byKey   map[string]*Principal
	admin   map[string]bool
	ledger  *Ledger
	account string
	proxy   *httputil.ReverseProxy
	srv     *http.Server
	ln      net.Listener
	log     *slog.Logger
}

// GateOptions configures a gate.
type GateOptions struct {
	Service    string // e.g. "kms"
	Target     string // the service's URL
	Evaluator  *Evaluator
	Classifier Classifier
	Principals []*Principal
	// Admin access keys pass unchecked: the sandbox's own set-up and its
	// test assertions, which play the account's administrator.
	Admin   []string
	Ledger  *Ledger
	Account string
	Log     *slog.Logger
}

// StartGate listens on a free loopback port.
func StartGate(o GateOptions) (*Gate, error) {
	u, err := url.Parse(o.Target)
	if err != nil {
		return nil, fmt.Errorf("iamsim: %s gate target %q: %w", o.Service, o.Target, err)
	}
	g := &Gate{Service: o.Service, eval: o.Evaluator, class: o.Classifier, byKey: map[string]*Principal{}, admin: map[string]bool{},
		ledger: o.Ledger, account: o.Account, proxy: httputil.NewSingleHostReverseProxy(u), log: o.Log}
	if g.log == nil {
		g.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	g.proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	for _, p := range o.Principals {
		g.byKey[p.AccessKey] = p
	}
	for _, k := range o.Admin {
		g.admin[k] = true
	}
	if g.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("iamsim: %s gate: %w", o.Service, err)
	}
	g.srv = &http.Server{Handler: g}
	go g.srv.Serve(g.ln)
	return g, nil
}

// URL is the gate's endpoint.
func (g *Gate) URL() string { return "http://" + g.ln.Addr().String() }

// Close stops the gate.
func (g *Gate) Close() error { return g.srv.Close() }

// AccessKeyOf returns the access key id of a SigV4 Authorization header.
func AccessKeyOf(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	_, rest, _ := strings.Cut(auth, "Credential=")
	key, _, _ := strings.Cut(rest, "/")
	return key
}

func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := AccessKeyOf(r)
	if g.admin[key] {
		g.proxy.ServeHTTP(w, r)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	p := g.byKey[key]
	if p == nil {
		g.ledger.record(Record{Principal: "unknown:" + key, Action: g.Service + ":" + opName(target), Decision: "UnknownAccessKey"})
		g.class.Deny(w, "The security token included in the request is invalid.")
		return
	}
	calls, err := g.class.Classify(withRequestRegion(r.Context(), RegionOf(r)), target, body)
	if err != nil {
		g.log.Warn("iam: cannot classify request", "service", g.Service, "target", target, "err", err)
		g.class.Deny(w, fmt.Sprintf("User: %s is not authorized: %v", p.ARN, err))
		return
	}
	for _, c := range calls {
		d, err := g.eval.Evaluate(r.Context(), Request{Principal: p.ARN, Action: c.Action, Resource: c.Resource, AccountID: g.account,
			IdentityPolicies: p.Policies, ResourcePolicy: c.ResourcePolicy, Context: c.Context})
		rec := Record{Principal: p.Name, Action: c.Action, Resource: c.Resource, Decision: string(d)}
		if err != nil {
			rec.Decision, rec.Error = "Error", err.Error()
			g.ledger.record(rec)
			g.log.Error("iam: evaluator refused the request", "principal", p.Name, "action", c.Action, "resource", c.Resource, "err", err)
			g.class.Deny(w, fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s: %v", p.ARN, c.Action, c.Resource, err))
			return
		}
		g.ledger.record(rec)
		if d != Allowed {
			why := "because no identity-based policy allows the " + c.Action + " action"
			if d == ExplicitlyDenied {
				why = "with an explicit deny"
			} else if c.ResourcePolicy != nil {
				why = "because no identity-based policy or resource-based policy allows the " + c.Action + " action"
			}
			g.log.Info("iam: access denied", "principal", p.Name, "action", c.Action, "resource", c.Resource, "decision", string(d))
			g.class.Deny(w, fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", p.ARN, c.Action, c.Resource, why))
			return
		}
	}
	g.proxy.ServeHTTP(w, r)
}

// opName is the operation of an X-Amz-Target ("TrentService.CreateKey").
func opName(target string) string {
	if i := strings.LastIndexByte(target, '.'); i >= 0 {
		return target[i+1:]
	}
	return target
}

// jsonDeny writes an awsJson error, with the X-Amz-Crc32 of its body that
// DynamoDB sends and its SDK client checks (the others ignore it).
func jsonDeny(w http.ResponseWriter, contentType, typ, message string) {
	body, _ := json.Marshal(map[string]string{"__type": typ, "message": message})
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(http.StatusBadRequest)
	w.Write(body)
}

// ErrUnclassified is a request a classifier cannot read.
var ErrUnclassified = errors.New("iamsim: request not understood")
