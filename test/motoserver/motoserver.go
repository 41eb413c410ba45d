// Package motoserver runs moto_server (the DynamoDB / CloudWatch / STS
// emulator from the Python moto project) on a free 127.0.0.1 port for tests
// and the sandbox, and stops it with its whole process group.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// InstallHint names how to get moto_server when it is missing.
const InstallHint = "pip install 'moto[server]==5.2.1' (preinstalled on the keyferry dev machines; see make deps)"

// ErrMissing is returned when moto_server is not on the PATH.
var ErrMissing = errors.New("motoserver: moto_server not found on PATH")

// Server is a running moto_server.
type Server struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// URL is the endpoint, e.g. http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// Start launches moto_server and waits until it answers.
func Start(ctx context.Context) (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", ErrMissing, InstallHint)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = nil, nil
	if os.Getenv("KEYFERRY_MOTO_LOG") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("motoserver: start: %w", err)
	}
	s := &Server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("motoserver: moto_server exited during start-up")
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		default:
		}
		resp, err := http.Get(s.url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, fmt.Errorf("motoserver: not answering on %s after 30s: %w", s.url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops moto_server and every process it started.
func (s *Server) Close() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
