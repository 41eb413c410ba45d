package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestPrometheusTextAndEndpoints(t *testing.T) {
	m := New()
	m.Request("accepted")
	m.Request("refused")
	m.Refusal("replay")
	m.Refusal("replay")
	m.ObserveWrap(30 * time.Millisecond)
	m.ObserveWrap(3 * time.Second)
	m.Connected(true)
	m.Reconnect("drop")
	m.HSMError()
	m.SetQueued(func() int { return 7 })
	healthy := true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrCh := make(chan net.Addr, 1)
	go Serve(ctx, "127.0.0.1:0", Handler(m, func() (bool, string) {
		if healthy {
			return true, "ok"
		}
		return false, "tunnel disconnected"
	}), func(a net.Addr) { addrCh <- a })
	base := "http://" + (<-addrCh).String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	for _, want := range []string{
		`keyferry_agent_requests_total{result="accepted"} 1`,
		`keyferry_agent_refusals_total{reason="replay"} 2`,
		`keyferry_agent_wrap_duration_seconds_bucket{le="0.05"} 1`,
		`keyferry_agent_wrap_duration_seconds_bucket{le="5"} 2`,
		`keyferry_agent_wrap_duration_seconds_bucket{le="+Inf"} 2`,
		`keyferry_agent_wrap_duration_seconds_count 2`,
		`keyferry_agent_connected 1`,
		`keyferry_agent_reconnects_total{reason="drop"} 1`,
		`keyferry_agent_hsm_errors_total 1`,
		`keyferry_agent_queued_messages 7`,
		`# TYPE keyferry_agent_wrap_duration_seconds histogram`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics (HTTP %d) lack %q", code, want)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	healthy = false
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "disconnected") {
		t.Fatalf("unhealthy healthz %d %q", code, body)
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	if err := Serve(context.Background(), "0.0.0.0:0", Handler(New(), nil), nil); err == nil {
		t.Fatal("listened on a non-loopback address")
	}
}
