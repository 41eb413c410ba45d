// Package motoserver runs moto_server (the DynamoDB / CloudWatch / STS
// emulator from the Python moto project) on a free 127.0.0.1 port for tests
// and the sandbox, and stops it with its whole process group.
//
// StartSerialized puts a front in that admits one request at a time.
// moto_server (5.2.1) serves each request on its own thread and isolates
// none of them. DynamoDB: TransactWriteItems deep-copies each table it
// touches and, when a condition fails, puts the copy back, so a refused
// transaction undoes writes other requests committed meanwhile; and a
// conditional write's check and write are not one step, so two can both
// succeed. SQS: DeleteMessage rebuilds the queue's message list from a
// pass over it and assigns it back, so a SendMessage landing meanwhile is
// lost (seen as a fleet job stuck in RESULT: its hand-on message never
// reached the worker). AWS does none of this. Serialized, moto's writes
// are atomic as AWS's are, and the control plane is tested against AWS's
// rules rather than worked around moto's. A long poll would hold the front
// for its whole wait: clients of a serialized SQS poll short
// (WaitTimeSeconds 0), as test/esm does.
package motoserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"time"
)

// InstallHint names how to get moto_server when it is missing.
const InstallHint = "pip install 'moto[server]==5.2.1' (preinstalled on the keyferry dev machines; see make deps)"

// ErrMissing is returned when moto_server is not on the PATH.
var ErrMissing = errors.New("motoserver: moto_server not found on PATH")

// Server is a running moto_server.
type Server struct {
	cmd   *exec.Cmd
	url   string
	done  chan struct{}
	front *http.Server // StartSerialized's one-at-a-time front, or nil
}

// URL is the endpoint, e.g. http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// StartSerialized launches moto_server behind a front that passes it one
// request at a time (see the package doc: moto's DynamoDB and SQS are not
// isolated between its threads). URL is the front's. Do not long-poll SQS
// on it.
func StartSerialized(ctx context.Context) (*Server, error) {
	s, err := Start(ctx)
	if err != nil {
		return nil, err
	}
	target, _ := url.Parse(s.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	turn := make(chan struct{}, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("motoserver: front: %w", err)
	}
	s.front = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case turn <- struct{}{}:
		case <-r.Context().Done():
			http.Error(w, "motoserver: front: request cancelled while waiting its turn", http.StatusServiceUnavailable)
			return
		}
		defer func() { <-turn }()
		proxy.ServeHTTP(w, r)
	})}
	go s.front.Serve(l)
	s.url = "http://" + l.Addr().String()
	return s, nil
}

// Start launches moto_server and waits until it answers. moto_server binds
// a port the kernel picks (-p 0) and Start reads which from its start-up
// line, so no other server can take the port between choosing and binding
// it (a free port chosen beforehand was once taken by another test server,
// and moto's URL answered 404 from that one).
func Start(ctx context.Context) (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrMissing, InstallHint)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = nil
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("motoserver: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("motoserver: start: %w", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		// Werkzeug logs " * Running on http://127.0.0.1:PORT" and then one
		// line per request: read it all, or moto_server blocks on a full pipe.
		verbose := os.Getenv("KEYFERRY_MOTO_LOG") != ""
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := runningOn.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			if verbose {
				fmt.Fprintln(os.Stderr, line)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { cmd.Wait(); close(s.done) }()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for s.url == "" {
		select {
		case a := <-addr:
			s.url = a
		case <-s.done:
			return nil, fmt.Errorf("motoserver: moto_server exited during start-up")
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		case <-timeout.C:
			s.Close()
			return nil, fmt.Errorf("motoserver: moto_server did not say where it listens within 30s")
		}
	}
	for {
		resp, err := http.Get(s.url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("motoserver: moto_server exited during start-up")
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		case <-timeout.C:
			s.Close()
			return nil, fmt.Errorf("motoserver: not answering on %s after 30s: %w", s.url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runningOn matches Werkzeug's start-up line.
var runningOn = regexp.MustCompile(`Running on (http://127\.0\.0\.1:[0-9]+)`)

// Close stops moto_server and every process it started.
func (s *Server) Close() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	if s.front != nil {
		s.front.Close()
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}
