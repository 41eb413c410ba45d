package audit

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkAppend measures one audit record write (hash, JSON, write, fsync).
func BenchmarkAppend(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := l.Append(ctx, Record{Event: EventRequest, Decision: "accepted", RequestID: "req-1", Group: "payments"}); err != nil {
			b.Fatal(err)
		}
	}
}
