package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// BuildLambda builds functions/cmd/<name> the way the Makefile's
// build-lambdas does (CGO_ENABLED=0, -tags lambda.norpc, -s -w) for
// goarch, and returns the binary's path and size in bytes.
func BuildLambda(ctx context.Context, root, name, goarch, outDir string) (string, int64, error) {
	out := filepath.Join(outDir, goarch, name, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid=", "-o", out, "./functions/cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("bench: build %s for %s: %v: %s", name, goarch, err, b)
	}
	st, err := os.Stat(out)
	if err != nil {
		return "", 0, err
	}
	return out, st.Size(), nil
}

// HostArch is the GOARCH binaries run here.
func HostArch() string { return runtime.GOARCH }

// LambdaInit starts binary as the Lambda runtime would (provided.al2023:
// AWS_LAMBDA_RUNTIME_API set, the handler's environment in env) against a
// minimal Runtime API on a loopback port, and returns the time from process
// start to its first GET /2018-06-01/runtime/invocation/next: the init
// phase (configuration, AWS clients, groups file) before the first event.
// An init error (POST .../init/error or exit) is returned as an error.
func LambdaInit(ctx context.Context, binary string, env []string) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	ready := make(chan time.Time, 1)
	initErr := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case ready <- time.Now():
		default:
		}
		// Hold the long poll as the real Runtime API does until an event
		// comes; none will, the process is stopped.
		<-r.Context().Done()
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 4096)
		n, _ := r.Body.Read(b)
		select {
		case initErr <- string(b[:n]):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	cmd := exec.Command(binary)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(), "_HANDLER=bootstrap",
		"AWS_LAMBDA_FUNCTION_NAME=keyferry-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256")
	out := &limitedBuffer{max: 8192}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("bench: start %s: %w", binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	select {
	case t := <-ready:
		return t.Sub(start), nil
	case msg := <-initErr:
		return 0, fmt.Errorf("bench: %s init error: %s (output: %s)", filepath.Base(filepath.Dir(binary)), msg, out.String())
	case err := <-exited:
		exited <- err
		return 0, fmt.Errorf("bench: %s exited before asking for an event: %v (output: %s)", binary, err, out.String())
	case <-time.After(30 * time.Second):
		return 0, fmt.Errorf("bench: %s did not ask for an event within 30s (output: %s)", binary, out.String())
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

type limitedBuffer struct {
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
