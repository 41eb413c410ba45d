// Package metrics holds the agent's operational metrics and writes them in
// the Prometheus text exposition format (0.0.4) by hand, without a client
// library: requests, refusals by reason, wrap latency histogram, connection
// state, reconnects, HSM errors, in-flight wraps and queued messages. It
// also serves /metrics and /healthz (meant for a loopback address).
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WrapBuckets are the wrap latency histogram bounds in seconds.
var WrapBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics is the agent's metric set. Methods are safe for concurrent use.
type Metrics struct {
	mu         sync.Mutex
	requests   map[string]float64 // by result
	refusals   map[string]float64 // by reason
	reconnects map[string]float64 // by reason
	hsmErrors  float64
	connected  float64
	inFlight   float64
	buckets    []float64 // cumulative counts per WrapBuckets
	wrapCount  float64
	wrapSum    float64
	queued     func() int
	started    time.Time
}

// New returns empty metrics.
func New() *Metrics {
	return &Metrics{
		requests: map[string]float64{}, refusals: map[string]float64{}, reconnects: map[string]float64{},
		buckets: make([]float64, len(WrapBuckets)), started: time.Now(),
	}
}

// Request counts a request outcome: accepted, refused, succeeded, failed.
func (m *Metrics) Request(result string) { m.mu.Lock(); m.requests[result]++; m.mu.Unlock() }

// Refusal counts a refusal by reason.
func (m *Metrics) Refusal(reason string) { m.mu.Lock(); m.refusals[reason]++; m.mu.Unlock() }

// HSMError counts a failed HSM operation.
func (m *Metrics) HSMError() { m.mu.Lock(); m.hsmErrors++; m.mu.Unlock() }

// InFlight adds d to the in-flight wrap gauge.
func (m *Metrics) InFlight(d int) { m.mu.Lock(); m.inFlight += float64(d); m.mu.Unlock() }

// ObserveWrap records one wrap's latency.
func (m *Metrics) ObserveWrap(d time.Duration) {
	s := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, b := range WrapBuckets {
		if s <= b {
			m.buckets[i]++
		}
	}
	m.wrapCount++
	m.wrapSum += s
}

// Connected implements tunnel.Observer.
func (m *Metrics) Connected(up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.connected = 0
	if up {
		m.connected = 1
	}
}

// Reconnect implements tunnel.Observer.
func (m *Metrics) Reconnect(reason string) { m.mu.Lock(); m.reconnects[reason]++; m.mu.Unlock() }

// SetQueued registers a function reporting the outgoing queue length.
func (m *Metrics) SetQueued(f func() int) { m.mu.Lock(); m.queued = f; m.mu.Unlock() }

// IsConnected reports the connection gauge.
func (m *Metrics) IsConnected() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.connected == 1 }

// WriteTo writes the Prometheus text format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	labelled := func(name, label string, vals map[string]float64) {
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s{%s=%s} %s\n", name, label, strconv.Quote(k), num(vals[k]))
		}
	}
	family("keyferry_agent_requests_total", "counter", "Wrap requests by result (accepted, refused, succeeded, failed).")
	labelled("keyferry_agent_requests_total", "result", m.requests)
	family("keyferry_agent_refusals_total", "counter", "Refused requests by policy reason.")
	labelled("keyferry_agent_refusals_total", "reason", m.refusals)
	family("keyferry_agent_wrap_duration_seconds", "histogram", "HSM generate+wrap latency.")
	for i, ub := range WrapBuckets {
		fmt.Fprintf(&b, "keyferry_agent_wrap_duration_seconds_bucket{le=%q} %s\n", num(ub), num(m.buckets[i]))
	}
	fmt.Fprintf(&b, "keyferry_agent_wrap_duration_seconds_bucket{le=\"+Inf\"} %s\n", num(m.wrapCount))
	fmt.Fprintf(&b, "keyferry_agent_wrap_duration_seconds_sum %s\nkeyferry_agent_wrap_duration_seconds_count %s\n", num(m.wrapSum), num(m.wrapCount))
	family("keyferry_agent_connected", "gauge", "1 while the tunnel has an active connection.")
	fmt.Fprintf(&b, "keyferry_agent_connected %s\n", num(m.connected))
	family("keyferry_agent_reconnects_total", "counter", "New tunnel connections after a drop or a proactive recycle.")
	labelled("keyferry_agent_reconnects_total", "reason", m.reconnects)
	family("keyferry_agent_hsm_errors_total", "counter", "Failed HSM operations.")
	fmt.Fprintf(&b, "keyferry_agent_hsm_errors_total %s\n", num(m.hsmErrors))
	family("keyferry_agent_in_flight", "gauge", "Wraps in progress.")
	fmt.Fprintf(&b, "keyferry_agent_in_flight %s\n", num(m.inFlight))
	q := m.queued
	m.mu.Unlock()
	if q != nil {
		family("keyferry_agent_queued_messages", "gauge", "Outgoing messages waiting for (or unacknowledged by) the tunnel.")
		fmt.Fprintf(&b, "keyferry_agent_queued_messages %d\n", q())
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func num(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
