// Package lambdaemu is a small emulator of the AWS Lambda Invoke API
// (POST /2015-03-31/functions/{name}/invocations) that routes function
// names to Go handlers, so the real service/lambda client (and the keyferry
// CLI) can invoke the control plane's handlers on this machine.
//
// Wire shapes follow Lambda (restJson1): RequestResponse answers 200 with
// the handler's JSON result and X-Amz-Executed-Version; a handler error
// answers 200 with X-Amz-Function-Error: Unhandled and the aws-lambda-go
// error document {"errorMessage","errorType"}; Event answers 202 with an
// empty body and runs the handler in the background; DryRun answers 204.
// Unknown functions are 404 with X-Amzn-ErrorType ResourceNotFoundException.
// Requests must carry an Authorization header (any SigV4 signature is
// accepted; signatures are not verified).
package lambdaemu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keyferry/keyferry/test/iamsim"
)

// Handler is one function: it gets the invocation payload and returns a
// JSON-marshalable result or an error (reported as a function error).
type Handler func(ctx context.Context, payload json.RawMessage) (any, error)

// Options configures the emulator.
type Options struct {
	Region  string // default us-east-1
	Account string // default 111122223333
	// Log receives one JSON line per invocation (default: discarded).
	Log *slog.Logger
	// MaxPayload bounds request payloads (default 6 MB, Lambda's synchronous limit).
	MaxPayload int64
	// Authorize, when set, decides lambda:InvokeFunction for the caller's
	// access key (from the SigV4 Authorization header) on the function's
	// ARN; an error is answered 403 AccessDeniedException with its text, as
	// Lambda answers IAM's refusal. Nil allows every signed call.
	Authorize func(ctx context.Context, accessKey, action, resource string) error
}

// Server is a running (or startable) emulator.
type Server struct {
	opts Options

	mu        sync.Mutex
	functions map[string]Handler

	srv  *http.Server
	ln   net.Listener
	bg   sync.WaitGroup
	base context.Context
	stop context.CancelFunc
}

var _ http.Handler = (*Server)(nil)

// New returns an emulator with no functions.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Account == "" {
		opts.Account = "111122223333"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if opts.MaxPayload == 0 {
		opts.MaxPayload = 6 << 20
	}
	base, stop := context.WithCancel(context.Background())
	return &Server{opts: opts, functions: map[string]Handler{}, base: base, stop: stop}
}

// Register routes invocations of name to h (replacing any previous handler).
func (s *Server) Register(name string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.functions[name] = h
}

// Typed adapts a handler of one request type (decoded from the payload like
// aws-lambda-go does) to a Handler.
func Typed[Req, Resp any](f func(context.Context, Req) (Resp, error)) Handler {
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		var req Req
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, err
		}
		return f(ctx, req)
	}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("lambdaemu: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return nil
}

// URL is the endpoint for AWS_ENDPOINT_URL_LAMBDA.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving, cancels and waits for background (Event) invocations.
func (s *Server) Close() error {
	var err error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.srv.Shutdown(ctx)
		cancel()
	}
	s.stop()
	s.bg.Wait()
	return err
}

// Wait blocks until every Event invocation started so far has finished.
func (s *Server) Wait() { s.bg.Wait() }

const invokePrefix = "/2015-03-31/functions/"

// apiError writes a restJson1 service error as Lambda does.
func apiError(w http.ResponseWriter, status int, code, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Type": typ, "message": msg})
}

// functionName extracts the function name from a name, a full or partial
// ARN (arn:aws:lambda:region:account:function:name[:qualifier],
// account:function:name) or name:qualifier.
func functionName(s string) string {
	parts := strings.Split(s, ":")
	for i, p := range parts {
		if p == "function" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return parts[0]
}

// ServeHTTP implements the Invoke operation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, invokePrefix)
	name, ok2 := strings.CutSuffix(rest, "/invocations")
	if !ok || !ok2 || r.Method != http.MethodPost || name == "" {
		apiError(w, http.StatusNotFound, "UnknownOperationException", "User", "lambdaemu implements only Invoke (POST "+invokePrefix+"{name}/invocations)")
		return
	}
	if r.Header.Get("Authorization") == "" {
		apiError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "User", "Missing Authentication Token")
		return
	}
	fn := functionName(name)
	s.mu.Lock()
	h := s.functions[fn]
	s.mu.Unlock()
	arn := fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.opts.Region, s.opts.Account, fn)
	if h == nil {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", "User", "Function not found: "+arn)
		return
	}
	if s.opts.Authorize != nil {
		if err := s.opts.Authorize(r.Context(), iamsim.AccessKeyOf(r), "lambda:InvokeFunction", arn); err != nil {
			apiError(w, http.StatusForbidden, "AccessDeniedException", "User", err.Error())
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opts.MaxPayload+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "User", "could not read request body: "+err.Error())
		return
	}
	if int64(len(body)) > s.opts.MaxPayload {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException", "User",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", s.opts.MaxPayload))
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "User", "Could not parse request body into json")
		return
	}
	reqID := newRequestID()
	w.Header().Set("X-Amzn-RequestId", reqID)
	ctx := lambdacontext.NewContext(context.WithoutCancel(r.Context()), &lambdacontext.LambdaContext{AwsRequestID: reqID, InvokedFunctionArn: arn})
	log := s.opts.Log.With("function", fn, "request_id", reqID)
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
		out, err := h(ctx, body)
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			log.Info("invocation failed", "error", err.Error())
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			w.WriteHeader(http.StatusOK)
			json.NewEncoder(w).Encode(ErrorDocument(err))
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			w.WriteHeader(http.StatusOK)
			json.NewEncoder(w).Encode(ErrorDocument(fmt.Errorf("marshal result: %w", err)))
			return
		}
		log.Info("invocation done")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	case "Event":
		s.bg.Add(1)
		bctx := lambdacontext.NewContext(s.base, &lambdacontext.LambdaContext{AwsRequestID: reqID, InvokedFunctionArn: arn})
		go func() {
			defer s.bg.Done()
			if _, err := h(bctx, body); err != nil {
				log.Info("asynchronous invocation failed", "error", err.Error())
			} else {
				log.Info("asynchronous invocation done")
			}
		}()
		w.WriteHeader(http.StatusAccepted)
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusBadRequest, "InvalidParameterValueException", "User",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", typ))
	}
}

// FunctionError is the document Lambda returns for an unhandled handler
// error (aws-lambda-go's InvokeResponse_Error shape).
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// ErrorDocument builds the error document for err; Type is the error's Go
// type name, as aws-lambda-go reports it.
func ErrorDocument(err error) FunctionError {
	t := reflect.TypeOf(err)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := "error"
	if t != nil && t.Name() != "" {
		name = t.Name()
	}
	return FunctionError{Message: err.Error(), Type: name}
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
