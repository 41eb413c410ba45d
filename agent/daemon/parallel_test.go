//go:build cgo

package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// concurrencyHSM records how many Wraps run at once and holds each until
// released.
type concurrencyHSM struct {
	HSM
	mu       sync.Mutex
	cur, max int
	entered  chan struct{}
	release  chan struct{}
}

func (c *concurrencyHSM) Wrap(ctx context.Context, label string, der []byte, alg keyspec.WrappingAlgorithm) ([]byte, error) {
	c.mu.Lock()
	c.cur++
	c.max = max(c.max, c.cur)
	c.mu.Unlock()
	c.entered <- struct{}{}
	<-c.release
	defer func() { c.mu.Lock(); c.cur--; c.mu.Unlock() }()
	return c.HSM.Wrap(ctx, label, der, alg)
}

// TestWrapsRunInParallelUpToPoolSize: with a pool of 2, two wraps run at
// once and the third waits for a free session; all three complete, and
// the signed audit log verifies against the agent identity key.
func TestWrapsRunInParallelUpToPoolSize(t *testing.T) {
	a := newAgent(t, nil) // pool size 2
	c := &concurrencyHSM{HSM: a.hsm, entered: make(chan struct{}, 10), release: make(chan struct{})}
	a.d.cfg.HSM = c
	var ids []string
	for i := 0; i < 3; i++ {
		r := a.requestStruct(nil)
		ids = append(ids, r.RequestID)
		a.d.Handle(context.Background(), a.sealRequest(t, a.cp, r))
	}
	for i := 0; i < 2; i++ {
		select {
		case <-c.entered:
		case <-time.After(60 * time.Second):
			t.Fatalf("only %d wraps started in parallel, want 2", i)
		}
	}
	select {
	case <-c.entered:
		t.Fatal("a third wrap started while the pool of 2 was busy")
	case <-time.After(200 * time.Millisecond):
	}
	close(c.release)
	<-c.entered
	got := map[string]bool{}
	for len(got) < len(ids) {
		env := a.out.next(t)
		if env.Action != protocol.ActionWrapResult {
			t.Fatalf("%s: %s", env.Action, env.Payload)
		}
		v, _ := protocol.ParseVerifierDER(a.id.PublicDER())
		r, err := protocol.OpenWrapResult(env, v, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got[r.RequestID] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("no result for %s", id)
		}
	}
	if c.max != 2 {
		t.Fatalf("max concurrent wraps %d, want 2", c.max)
	}
	if err := a.d.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := a.auditRecords(t)
	pub, err := x509ParseP256(a.id.PublicDER())
	if err != nil {
		t.Fatal(err)
	}
	f := openFile(t, a.auditPath)
	res, err := audit.Verify(f, pub)
	if err != nil || res.Signed != len(recs) {
		t.Fatalf("signed audit log: %+v %v", res, err)
	}
	var succeeded int
	for _, r := range recs {
		if r.Event == audit.EventResult && r.Decision == "succeeded" {
			succeeded++
			if r.Fields["wrapped_sha256"] == "" {
				t.Fatal("result record lacks the wrapped blob digest")
			}
		}
	}
	if succeeded != 3 {
		t.Fatalf("%d succeeded records, want 3", succeeded)
	}
}
