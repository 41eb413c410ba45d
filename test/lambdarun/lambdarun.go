// Package lambdarun runs Lambda functions on this machine the way Lambda
// does: each function is its real `bootstrap` behind AWS's Lambda Runtime
// Interface Emulator (aws-lambda-rie), one OS process tree per concurrent
// instance. Instances start on demand up to the function's concurrency
// (reserved concurrency, else the account limit), are reused between
// invocations, and an instance that runs past the function's timeout is
// killed and replaced, as Lambda does. Functions are configured from the
// synthesized template (ConfigFromTemplate); Handler plugs a function into
// the lambdaemu Invoke API front end.
package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keyferry/keyferry/test/lambdaemu"
)

// Options configures a runtime.
type Options struct {
	// RIE is the aws-lambda-rie executable.
	RIE string
	// Region and Account of the emulated functions.
	Region, Account string
	// AccountConcurrency bounds a function without reserved concurrency
	// (Lambda's unreserved account pool; default 10).
	AccountConcurrency int
	// Credentials gives a function's instances their AWS credentials
	// (default: none set; the sandbox passes its cloud key, or per-role keys).
	Credentials func(fn, roleLogicalID string) (accessKeyID, secret string)
	// Env is added to every instance's environment (endpoints, region).
	Env []string
	// Output receives the instances' stdout/stderr (default: discarded).
	Output io.Writer
	// Log receives the runtime's own JSON logs (default: discarded).
	Log *slog.Logger
}

// FunctionConfig is one function.
type FunctionConfig struct {
	Name          string // e.g. keyferry-rotate
	RoleLogicalID string
	// Bootstrap is the executable; TaskDir its working directory
	// (LAMBDA_TASK_ROOT; default the bootstrap's folder).
	Bootstrap, TaskDir string
	Timeout            time.Duration
	MemoryMB           int
	// Concurrency is the reserved concurrency, or -1 for the account pool.
	Concurrency int
	Env         map[string]string
}

// Stats are a function's counters.
type Stats struct {
	Invocations int64 `json:"invocations"`
	ColdStarts  int64 `json:"cold_starts"`
	Timeouts    int64 `json:"timeouts"`
	Errors      int64 `json:"errors"`
	Throttles   int64 `json:"throttles"`
	AliveNow    int   `json:"instances_alive"`
	AliveMax    int   `json:"instances_max"`
}

// Runtime runs functions.
type Runtime struct {
	opts Options

	mu     sync.Mutex
	fns    map[string]*function
	closed bool

	// alive counts instances of every function; aliveMax is its peak.
	alive, aliveMax atomic.Int64
}

// InstancesMax is the most instances alive at once, all functions together.
func (rt *Runtime) InstancesMax() int { return int(rt.aliveMax.Load()) }

// ColdStarts is the number of instances started, all functions together.
func (rt *Runtime) ColdStarts() int {
	n := 0
	for _, name := range rt.Names() {
		n += int(rt.Stats(name).ColdStarts)
	}
	return n
}

type function struct {
	rt    *Runtime
	cfg   FunctionConfig
	limit int
	// idle holds warm instances. Under mu: all the instances alive,
	// starting those being started (together bounded by limit), and freed
	// closed (and replaced) whenever an instance goes, to wake waiters.
	idle     chan *instance
	mu       sync.Mutex
	all      map[*instance]bool
	starting int
	freed    chan struct{}
	stats    Stats
}

type instance struct {
	fn   *function
	cmd  *exec.Cmd
	url  string
	exit chan struct{}
	out  *tail
}

// New returns a runtime with no functions.
func New(opts Options) *Runtime {
	if opts.AccountConcurrency <= 0 {
		opts.AccountConcurrency = 10
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	return &Runtime{opts: opts, fns: map[string]*function{}}
}

// Add registers a function. It checks that the RIE and the bootstrap are
// executables; instances start on the first invocation.
func (rt *Runtime) Add(cfg FunctionConfig) error {
	for what, p := range map[string]string{"bootstrap": cfg.Bootstrap, "aws-lambda-rie": rt.opts.RIE} {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("lambdarun: function %q: %s: %w", cfg.Name, what, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("lambdarun: function %q: %s %s is not an executable file", cfg.Name, what, p)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 128
	}
	if cfg.TaskDir == "" {
		cfg.TaskDir = dirOf(cfg.Bootstrap)
	}
	limit := cfg.Concurrency
	if limit < 0 {
		limit = rt.opts.AccountConcurrency
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return errors.New("lambdarun: runtime closed")
	}
	if _, dup := rt.fns[cfg.Name]; dup {
		return fmt.Errorf("lambdarun: function %q added twice", cfg.Name)
	}
	rt.fns[cfg.Name] = &function{rt: rt, cfg: cfg, limit: limit, idle: make(chan *instance, max(limit, 1)), freed: make(chan struct{}), all: map[*instance]bool{}}
	return nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// Names lists the functions, sorted.
func (rt *Runtime) Names() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []string
	for n := range rt.fns {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Stats returns a function's counters.
func (rt *Runtime) Stats(name string) Stats {
	rt.mu.Lock()
	f := rt.fns[name]
	rt.mu.Unlock()
	if f == nil {
		return Stats{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.AliveNow = len(f.all)
	return s
}

// PIDs lists the RIE process of every instance alive of a function.
func (rt *Runtime) PIDs(name string) []int {
	rt.mu.Lock()
	f := rt.fns[name]
	rt.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for in := range f.all {
		out = append(out, in.cmd.Process.Pid)
	}
	sort.Ints(out)
	return out
}

// Error is a function error: the document the runtime reported.
type Error struct {
	Function string
	Doc      lambdaemu.FunctionError
}

func (e *Error) Error() string { return e.Doc.Message }

// ErrTimeout marks an invocation that ran past the function's timeout.
var ErrTimeout = errors.New("task timed out")

// ErrThrottled is an invocation refused because every instance the
// function may have is busy (Lambda's TooManyRequestsException).
var ErrThrottled = errors.New("rate exceeded: function concurrency limit reached")

// Invoke runs one invocation and returns the function's JSON result. A
// function error is an *Error; a timeout wraps ErrTimeout. It waits for a
// free instance while ctx allows (the Invoke API front end rejects at once
// with WaitFree false).
func (rt *Runtime) Invoke(ctx context.Context, name string, payload []byte) ([]byte, error) {
	rt.mu.Lock()
	f, closed := rt.fns[name], rt.closed
	rt.mu.Unlock()
	if closed {
		return nil, errors.New("lambdarun: runtime closed")
	}
	if f == nil {
		return nil, fmt.Errorf("lambdarun: function %q not added", name)
	}
	if f.limit == 0 {
		f.count(func(s *Stats) { s.Throttles++ })
		return nil, fmt.Errorf("lambdarun: function %q: %w (reserved concurrency 0)", name, ErrThrottled)
	}
	in, err := rt.acquire(ctx, f)
	if err != nil {
		return nil, err
	}
	f.count(func(s *Stats) { s.Invocations++ })
	out, err := rt.invoke(ctx, in, payload)
	if err != nil && (errors.Is(err, ErrTimeout) || !errors.As(err, new(*Error))) {
		// A timed-out or broken instance is killed and replaced (on demand).
		rt.kill(in)
		if errors.Is(err, ErrTimeout) {
			f.count(func(s *Stats) { s.Timeouts++ })
		}
		f.count(func(s *Stats) { s.Errors++ })
		return nil, err
	}
	if err != nil {
		f.count(func(s *Stats) { s.Errors++ })
	}
	f.idle <- in
	return out, err
}

func (f *function) count(c func(*Stats)) {
	f.mu.Lock()
	c(&f.stats)
	f.mu.Unlock()
}

// acquire takes a warm instance, or starts one when a slot is free, or
// waits for either.
func (rt *Runtime) acquire(ctx context.Context, f *function) (*instance, error) {
	lost := 0
	for {
		select {
		case in := <-f.idle:
			if in.dead() {
				rt.kill(in)
				continue
			}
			return in, nil
		default:
		}
		f.mu.Lock()
		if len(f.all)+f.starting < f.limit {
			f.starting++
			f.mu.Unlock()
			in, err := rt.start(ctx, f)
			// A port chosen free was taken before the RIE bound it:
			// the slot is free again, so try afresh with new ports.
			if errors.Is(err, errPortTaken) && lost < maxPortLosses {
				lost++
				rt.opts.Log.Info("instance start lost its port, retrying", "function", f.cfg.Name, "err", err.Error())
				continue
			}
			return in, err
		}
		freed := f.freed
		f.mu.Unlock()
		select {
		case in := <-f.idle:
			if in.dead() {
				rt.kill(in)
				continue
			}
			return in, nil
		case <-freed:
		case <-ctx.Done():
			f.count(func(s *Stats) { s.Throttles++ })
			return nil, fmt.Errorf("lambdarun: function %q: %w: %w", f.cfg.Name, ErrThrottled, ctx.Err())
		}
	}
}

// dead reports whether an instance's process has exited.
func (in *instance) dead() bool {
	select {
	case <-in.exit:
		return true
	default:
		return false
	}
}

// release gives back a start reservation that made no instance.
func (f *function) release() {
	f.mu.Lock()
	f.starting--
	close(f.freed)
	f.freed = make(chan struct{})
	f.mu.Unlock()
}

// start launches one instance: aws-lambda-rie on two free loopback ports
// running the bootstrap, and waits until it listens. It consumes the
// caller's start reservation (f.starting) whatever happens.
func (rt *Runtime) start(ctx context.Context, f *function) (*instance, error) {
	rieAddr, err := freeAddr()
	if err != nil {
		f.release()
		return nil, err
	}
	apiAddr, err := freeAddr()
	if err != nil {
		f.release()
		return nil, err
	}
	cfg := f.cfg
	cmd := exec.Command(rt.opts.RIE, "--runtime-interface-emulator-address", rieAddr, "--runtime-api-address", apiAddr, cfg.Bootstrap)
	cmd.Dir = cfg.TaskDir
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TZ=:UTC", "LANG=en_US.UTF-8",
		"AWS_LAMBDA_FUNCTION_NAME=" + cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%d", int((cfg.Timeout+time.Second-1)/time.Second)),
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + cfg.Name,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT=" + cfg.TaskDir,
		"AWS_REGION=" + rt.opts.Region, "AWS_DEFAULT_REGION=" + rt.opts.Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if rt.opts.Credentials != nil {
		id, secret := rt.opts.Credentials(cfg.Name, cfg.RoleLogicalID)
		env = append(env, "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_SESSION_TOKEN=")
	}
	env = append(env, rt.opts.Env...)
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+cfg.Env[k])
	}
	cmd.Env = env
	t := &tail{max: 4096}
	w := io.MultiWriter(rt.opts.Output, t)
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group, so a kill takes the bootstrap with it; and
	// killed if this process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.release()
		return nil, fmt.Errorf("lambdarun: function %q: start aws-lambda-rie: %w", cfg.Name, err)
	}
	in := &instance{fn: f, cmd: cmd, url: "http://" + rieAddr + "/2015-03-31/functions/function/invocations", exit: make(chan struct{}), out: t}
	go func() { cmd.Wait(); close(in.exit) }()
	f.mu.Lock()
	f.starting--
	f.all[in] = true
	f.stats.AliveMax = max(f.stats.AliveMax, len(f.all))
	for n := f.rt.alive.Add(1); ; {
		m := f.rt.aliveMax.Load()
		if n <= m || f.rt.aliveMax.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", rieAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			// The port answers; it must be this RIE's, not a server that
			// took the port between freeAddr and the RIE's bind.
			if ok, perr := listensOn(cmd.Process.Pid, rieAddr); ok {
				break
			} else if perr != nil && !in.dead() {
				rt.kill(in)
				return nil, fmt.Errorf("lambdarun: function %q: who listens on %s: %w", cfg.Name, rieAddr, perr)
			}
			// Not this RIE's socket (or the RIE has gone): its own bind
			// fails and it exits, which the select below sees.
		}
		select {
		case <-in.exit:
			rt.kill(in)
			if strings.Contains(t.String(), "address already in use") {
				return nil, fmt.Errorf("lambdarun: function %q: aws-lambda-rie on %s / %s: %w", cfg.Name, rieAddr, apiAddr, errPortTaken)
			}
			return nil, fmt.Errorf("lambdarun: function %q: aws-lambda-rie exited at start: %s", cfg.Name, t.String())
		case <-ctx.Done():
			rt.kill(in)
			return nil, fmt.Errorf("lambdarun: function %q: start: %w", cfg.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			rt.kill(in)
			return nil, fmt.Errorf("lambdarun: function %q: aws-lambda-rie did not listen on %s within 10s: %s", cfg.Name, rieAddr, t.String())
		}
	}
	f.count(func(s *Stats) { s.ColdStarts++ })
	rt.opts.Log.Info("instance started", "function", cfg.Name, "pid", cmd.Process.Pid)
	return in, nil
}

// errPortTaken: an RIE could not bind a port chosen free, because another
// process took it in between. acquire retries with new ports.
var errPortTaken = errors.New("a port chosen free was taken before aws-lambda-rie bound it")

// maxPortLosses bounds acquire's retries after errPortTaken.
const maxPortLosses = 5

// freeAddr picks a free loopback port (a variable: a test hands out a
// taken one to prove the retry).
var freeAddr = func() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lambdarun: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// invoke posts one event to an instance's RIE.
func (rt *Runtime) invoke(ctx context.Context, in *instance, payload []byte) ([]byte, error) {
	cfg := in.fn.cfg
	// The function's own timeout bounds the invocation (the RIE enforces it
	// too; the grace covers its answer), not the caller's context: a caller
	// that gives up (API Gateway's 29 s) leaves the instance running.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout+2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, in.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ictx.Err() != nil {
			return nil, fmt.Errorf("lambdarun: function %q: %w after %.2f seconds", cfg.Name, ErrTimeout, cfg.Timeout.Seconds())
		}
		select {
		case <-in.exit:
			return nil, fmt.Errorf("lambdarun: function %q: instance exited: %s", cfg.Name, in.out.String())
		default:
		}
		return nil, fmt.Errorf("lambdarun: function %q: invoke: %w", cfg.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("lambdarun: function %q: read answer: %w", cfg.Name, err)
	}
	if bytes.HasPrefix(body, []byte("Task timed out after")) {
		return nil, fmt.Errorf("lambdarun: function %q: %w after %.2f seconds", cfg.Name, ErrTimeout, cfg.Timeout.Seconds())
	}
	if resp.StatusCode != http.StatusOK {
		// 502: the bootstrap failed to initialise or crashed. The RIE can
		// answer before its copy of the bootstrap's stderr reaches the
		// tail; killing the instance and waiting for it drains that pipe
		// (Invoke's own kill afterwards is a no-op).
		rt.kill(in)
		return nil, fmt.Errorf("lambdarun: function %q: bootstrap failed (RIE answered %d): %s %s", cfg.Name, resp.StatusCode, bytes.TrimSpace(body), in.out.String())
	}
	if resp.Header.Get("X-Amz-Function-Error") != "" || isErrorDoc(body) {
		var doc lambdaemu.FunctionError
		json.Unmarshal(body, &doc)
		return nil, &Error{Function: cfg.Name, Doc: doc}
	}
	return body, nil
}

// isErrorDoc reports whether body is the runtime API's error document.
func isErrorDoc(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, msg := m["errorMessage"]
	_, typ := m["errorType"]
	return msg && typ && len(m) <= 3
}

// kill ends an instance's process group and frees its slot.
func (rt *Runtime) kill(in *instance) {
	f := in.fn
	f.mu.Lock()
	alive := f.all[in]
	delete(f.all, in)
	f.mu.Unlock()
	syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
	<-in.exit
	if alive {
		f.rt.alive.Add(-1)
		f.mu.Lock()
		close(f.freed)
		f.freed = make(chan struct{})
		f.mu.Unlock()
		rt.opts.Log.Info("instance stopped", "function", f.cfg.Name, "pid", in.cmd.Process.Pid)
	}
}

// Close kills every instance of every function and waits for them.
func (rt *Runtime) Close() error {
	rt.mu.Lock()
	rt.closed = true
	fns := rt.fns
	rt.mu.Unlock()
	for _, f := range fns {
		f.mu.Lock()
		var all []*instance
		for in := range f.all {
			all = append(all, in)
		}
		f.mu.Unlock()
		for _, in := range all {
			rt.kill(in)
		}
	}
	return nil
}

// Handler adapts a function to the lambdaemu Invoke API front end.
func (rt *Runtime) Handler(name string) lambdaemu.Handler {
	return func(ctx context.Context, payload json.RawMessage) (any, error) {
		out, err := rt.Invoke(ctx, name, payload)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(out), nil
	}
}

// tail keeps the last bytes of an instance's output for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
