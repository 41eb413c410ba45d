package kmsemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is usable: region us-east-1,
// account 111122223333, no quotas, rotation cap 10.
type Options struct {
	Region  string
	Account string
	// QuotaScale multiplies AWS's published per-second quotas: 1 = AWS, 100 =
	// a hundred times faster, 0 = unlimited.
	QuotaScale float64
	// RotationCap is the number of on-demand rotations allowed per key
	// (LimitExceededException beyond); 0 means KMS's 25.
	RotationCap int
	// RotationDelay is how long an on-demand rotation runs (emulator clock)
	// before it completes; OnDemandRotationStartDate is visible meanwhile.
	// 0 means 2 seconds; negative means it completes on the next request.
	RotationDelay time.Duration
	// Clock is the base time source (nil means time.Now); the server adds
	// the offset set by Advance.
	Clock func() time.Time
	// WrappingKeyPool is how many RSA wrapping keys of each size are kept
	// pre-generated; 0 means 2, negative disables the pool.
	WrappingKeyPool int
	// Fault, when set, is consulted for every KMS request.
	Fault FaultFunc
	// RegionFault, when set, is consulted for every KMS request Fault did
	// not fault, with the region the request was signed for.
	RegionFault func(region, op string, req []byte) *FaultAction
	// ReplicaCreating is how long a new replica key stays Creating
	// (emulator clock); 0 means it is ready at once.
	ReplicaCreating time.Duration
	// Logger receives JSON request logs (never key material); nil discards.
	Logger *slog.Logger
}

// Server is the emulator. Create it with New.
type Server struct {
	opts    Options
	clock   *Clock
	limiter *limiter
	log     *slog.Logger
	pool    *wrapPool

	// mu guards the state of every region: one mutex shared by the root
	// and its region servers (ReplicateKey writes two regions at once).
	mu      *sync.Mutex
	keys    map[string]*key
	order   []string // key ids in creation order
	aliases map[string]*alias
	tokens  map[string]*importParams

	statsMu sync.Mutex
	stats   Stats

	// root is the server that serves HTTP (itself for the root); regions
	// (root only) holds one server per region served, the root's own
	// region included. See regions.go.
	root    *Server
	regions map[string]*Server

	httpSrv *http.Server
	ln      net.Listener
	cancel  context.CancelFunc
}

var _ http.Handler = (*Server)(nil)

// Stats counts requests per KMS operation.
type Stats struct {
	// Requests counts every request that named an operation, including
	// throttled and failed ones.
	Requests map[string]int `json:"requests"`
	// Errors counts error responses per operation (throttles included).
	Errors map[string]int `json:"errors"`
	// Throttled counts ThrottlingException answers per operation.
	Throttled map[string]int `json:"throttled"`
	// Faults counts injected faults per operation.
	Faults map[string]int `json:"faults"`
}

// New returns a Server; call Start (or mount it as an http.Handler) to serve.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "111122223333"
	}
	if opts.RotationCap == 0 {
		opts.RotationCap = 25
	}
	if opts.RotationDelay == 0 {
		opts.RotationDelay = 2 * time.Second
	}
	if opts.WrappingKeyPool == 0 {
		opts.WrappingKeyPool = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		mu:      &sync.Mutex{},
		clock:   NewClock(opts.Clock),
		limiter: newLimiter(opts.QuotaScale, nil),
		log:     log,
		keys:    map[string]*key{},
		aliases: map[string]*alias{},
		tokens:  map[string]*importParams{},
		cancel:  cancel,
		stats:   Stats{Requests: map[string]int{}, Errors: map[string]int{}, Throttled: map[string]int{}, Faults: map[string]int{}},
	}
	s.pool = newWrapPool(ctx, opts.WrappingKeyPool)
	s.root = s
	s.regions = map[string]*Server{opts.Region: s}
	return s
}

// Start listens on addr ("127.0.0.1:0" for a free port) and serves in the
// background until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("kmsemu: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(ln) }()
	return nil
}

// Addr returns the listening address after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL returns the endpoint URL ("http://127.0.0.1:PORT") after Start.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops serving and the wrapping-key pool.
func (s *Server) Close() error {
	s.cancel()
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			return s.httpSrv.Close()
		}
	}
	return nil
}

// Region and Account return the configured values.
func (s *Server) Region() string { return s.opts.Region }

// Account returns the configured account id.
func (s *Server) Account() string { return s.opts.Account }

// Now returns the emulator clock's time.
func (s *Server) Now() time.Time { return s.clock.Now() }

// Advance moves the emulator clock forward by d and applies what became due
// (material expiry, key deletion, rotation completion).
func (s *Server) Advance(d time.Duration) {
	s.clock.Advance(d)
	s.mu.Lock()
	s.tickAll(s.clock.Now())
	s.mu.Unlock()
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	cp := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return Stats{Requests: cp(s.stats.Requests), Errors: cp(s.stats.Errors), Throttled: cp(s.stats.Throttled), Faults: cp(s.stats.Faults)}
}

func (s *Server) count(m func(*Stats) map[string]int, op string) {
	s.statsMu.Lock()
	m(&s.stats)[op]++
	s.statsMu.Unlock()
}

// Error is a KMS error answer: __type and message, with an HTTP status.
type Error struct {
	Type    string
	Message string
	Status  int
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func errf(typ, format string, args ...any) *Error {
	st := http.StatusBadRequest
	if typ == "KMSInternalException" {
		st = http.StatusInternalServerError
	}
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...), Status: st}
}

// Error type names used in more than one place.
const (
	errValidation       = "ValidationException"
	errNotFound         = "NotFoundException"
	errInvalidState     = "KMSInvalidStateException"
	errDisabled         = "DisabledException"
	errUnsupported      = "UnsupportedOperationException"
	errInvalidUsage     = "InvalidKeyUsageException"
	errConflict         = "ConflictException"
	errIncorrectMat     = "IncorrectKeyMaterialException"
	errInvalidToken     = "InvalidImportTokenException"
	errExpiredToken     = "ExpiredImportTokenException"
	errLimitExceeded    = "LimitExceededException"
	errInvalidAliasName = "InvalidAliasNameException"
	errInvalidMarker    = "InvalidMarkerException"
	errAlreadyExists    = "AlreadyExistsException"
	errInvalidCipher    = "InvalidCiphertextException"
	errIncorrectKey     = "IncorrectKeyException"
	errThrottling       = "ThrottlingException"
	errTag              = "TagException"
	errMalformedPolicy  = "MalformedPolicyDocumentException"
)

type handler func(s *Server, now time.Time, body []byte) (any, *Error)

var operations = map[string]handler{}

func register(op string, h handler) { operations[op] = h }

// decode unmarshals the request body into v, mapping failures to
// SerializationException as AWS does.
func decode(body []byte, v any) *Error {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errf("SerializationException", "cannot parse request: %v", err)
	}
	return nil
}

// ServeHTTP implements the awsJson1_1 protocol and the /_emu admin endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emu/") {
		s.serveAdmin(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(w, errf("SerializationException", "read body: %v", err))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "TrentService.")
	if r.Method != http.MethodPost || !ok {
		writeErr(w, errf("UnknownOperationException", "missing or unknown X-Amz-Target %q", target))
		return
	}
	s.count(func(st *Stats) map[string]int { return st.Requests }, op)
	fail := func(e *Error) {
		s.count(func(st *Stats) map[string]int { return st.Errors }, op)
		s.log.Info("kms request", "op", op, "error", e.Type)
		writeErr(w, e)
	}
	if r.Header.Get("Authorization") == "" {
		fail(&Error{Type: "MissingAuthenticationTokenException", Message: "Missing Authentication Token", Status: http.StatusBadRequest})
		return
	}
	h, ok := operations[op]
	if !ok {
		fail(errf("UnknownOperationException", "operation %s is not implemented by kmsemu", op))
		return
	}
	// The region is the one the request was signed for (its credential
	// scope); each region has its own keys, aliases, tokens and quotas.
	rs, rerr := s.regionOf(r.Header.Get("Authorization"))
	if rerr != nil {
		fail(rerr)
		return
	}
	if !rs.limiter.allow(op) {
		s.count(func(st *Stats) map[string]int { return st.Throttled }, op)
		fail(errf(errThrottling, "Rate exceeded"))
		return
	}
	var fa *FaultAction
	if s.opts.Fault != nil {
		fa = s.opts.Fault(op, body)
	}
	if fa == nil && s.opts.RegionFault != nil {
		fa = s.opts.RegionFault(rs.opts.Region, op, body)
	}
	if fa != nil {
		s.count(func(st *Stats) map[string]int { return st.Faults }, op)
		if fa.Delay > 0 {
			select {
			case <-time.After(fa.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if fa.ErrorType != "" {
			fail(&Error{Type: fa.ErrorType, Message: fa.Message, Status: fa.status()})
			return
		}
	}
	s.mu.Lock()
	now := s.clock.Now()
	s.tickAll(now)
	out, kerr := h(rs, now, body)
	s.mu.Unlock()
	if fa != nil && fa.DropResponse {
		s.log.Info("kms request", "op", op, "fault", "dropped response")
		panic(http.ErrAbortHandler)
	}
	if kerr != nil {
		fail(kerr)
		return
	}
	buf, err := json.Marshal(out)
	if err != nil {
		fail(errf("KMSInternalException", "encode response: %v", err))
		return
	}
	s.log.Info("kms request", "op", op)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", newUUID())
	_, _ = w.Write(buf)
}

func writeErr(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", newUUID())
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Type, "message": e.Message})
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/_emu/clock" && r.Method == http.MethodPost:
		var req struct {
			AdvanceSeconds float64 `json:"advance_seconds"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.AdvanceSeconds < 0 || math.IsNaN(req.AdvanceSeconds) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "want {\"advance_seconds\": N} with N >= 0"})
			return
		}
		s.Advance(time.Duration(req.AdvanceSeconds * float64(time.Second)))
		_ = json.NewEncoder(w).Encode(map[string]any{"now": epoch(s.clock.Now())})
	case r.URL.Path == "/_emu/clock" && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]any{"now": epoch(s.clock.Now())})
	case r.URL.Path == "/_emu/stats" && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(s.Stats())
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "unknown admin endpoint"})
	}
}

// epoch is a timestamp that marshals as epoch seconds (a JSON number), the
// awsJson1_1 timestamp format, and unmarshals from a number or an ISO 8601
// string.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	t := time.Time(e)
	return []byte(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)), nil
}

func (e *epoch) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			*e = epoch(floatTime(f))
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", s, err)
		}
		*e = epoch(t)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s: %w", b, err)
	}
	*e = epoch(floatTime(f))
	return nil
}

func floatTime(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9)))
}

func tp(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("kmsemu: crypto/rand failed"))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
