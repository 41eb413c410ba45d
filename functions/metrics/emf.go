// Package metrics writes CloudWatch Embedded Metric Format (EMF) records: one
// JSON line per record on stdout of the Lambda, which CloudWatch Logs turns
// into metrics without any API call. Namespace "keyferry".
package metrics

import (
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

// Metric names.
const (
	RotationsSucceeded      = "RotationsSucceeded"
	RotationsFailed         = "RotationsFailed"
	RotationLatency         = "RotationLatency"
	KeyAge                  = "KeyAge"
	AgentsConnected         = "AgentsConnected"
	MaterialSecondsToExpiry = "MaterialSecondsToExpiry"
	WrapRefusals            = "WrapRefusals" // error messages from agents, by Group and Code
)

// Namespace is the CloudWatch namespace of every keyferry metric.
const Namespace = "keyferry"

// Emitter writes EMF records. The zero value writes to os.Stdout.
type Emitter struct {
	mu  sync.Mutex
	W   io.Writer
	Now func() time.Time
}

// Unit is a CloudWatch unit.
type Unit string

// Units used by keyferry.
const (
	Count   Unit = "Count"
	Seconds Unit = "Seconds"
	Millis  Unit = "Milliseconds"
)

// Emit writes one metric value with dimensions (e.g. {"Group": "payments"}).
func (e *Emitter) Emit(name string, value float64, unit Unit, dims map[string]string) {
	if e == nil {
		return
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	keys := make([]string, 0, len(dims))
	rec := map[string]any{}
	for k, v := range dims {
		keys = append(keys, k)
		rec[k] = v
	}
	rec[name] = value
	rec["_aws"] = map[string]any{
		"Timestamp": now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    []any{map[string]any{"Name": name, "Unit": string(unit)}},
		}},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.W
	if w == nil {
		w = os.Stdout
	}
	_, _ = w.Write(append(b, '\n'))
}
