package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmitWritesEMF(t *testing.T) {
	tests := []struct {
		name  string
		value float64
		unit  Unit
		dims  map[string]string
	}{
		{RotationsSucceeded, 1, Count, map[string]string{"Group": "g1"}},
		{RotationLatency, 1234, Millis, map[string]string{"Group": "g1", "Mode": "in-place"}},
		{AgentsConnected, 3, Count, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := &Emitter{W: &buf, Now: func() time.Time { return time.UnixMilli(42) }}
			e.Emit(tt.name, tt.value, tt.unit, tt.dims)
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatal(err)
			}
			if rec[tt.name] != tt.value {
				t.Fatalf("value %v, want %v", rec[tt.name], tt.value)
			}
			aws := rec["_aws"].(map[string]any)
			if aws["Timestamp"].(float64) != 42 {
				t.Fatalf("timestamp %v", aws["Timestamp"])
			}
			m := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
			if m["Namespace"] != Namespace || len(m["Dimensions"].([]any)[0].([]any)) != len(tt.dims) {
				t.Fatalf("directive %v", m)
			}
			for k, v := range tt.dims {
				if rec[k] != v {
					t.Fatalf("dimension %s = %v", k, rec[k])
				}
			}
		})
	}
}
