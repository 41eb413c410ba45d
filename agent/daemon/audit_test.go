//go:build cgo

package daemon

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/shared/protocol"
)

// failingAuditor fails the appends that fail selects and passes the rest on.
type failingAuditor struct {
	Auditor
	fail func(audit.Record) bool
}

func (f *failingAuditor) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if f.fail(r) {
		return audit.Record{}, errors.New("disk full")
	}
	return f.Auditor.Append(ctx, r)
}

// TestInvariant4_NoWrapWithoutAuditRecord: no wrap result leaves the agent
// without its audit record on disk. When the append fails (the result's
// record, or every record), no wrap_result is sent; an error result is, and
// the failure is logged.
func TestInvariant4_NoWrapWithoutAuditRecord(t *testing.T) {
	cases := []struct {
		name string
		fail func(audit.Record) bool
	}{
		{"result record", func(r audit.Record) bool { return r.Event == audit.EventResult && r.Decision == "succeeded" }},
		{"acceptance record", func(r audit.Record) bool { return r.Event == audit.EventRequest }},
		{"every record", func(audit.Record) bool { return true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t, nil)
			a.d.cfg.Audit = &failingAuditor{Auditor: a.d.cfg.Audit, fail: tc.fail}
			r := a.requestStruct(nil)
			a.d.Handle(context.Background(), a.sealRequest(t, a.cp, r))
			env := a.out.next(t)
			if env.Action != protocol.ActionError {
				t.Fatalf("daemon sent %s with its audit record not written, want error", env.Action)
			}
			v, _ := protocol.ParseVerifierDER(a.id.PublicDER())
			e, err := protocol.OpenError(env, v)
			if err != nil {
				t.Fatal(err)
			}
			if e.RequestID != r.RequestID || e.Code != protocol.CodeInternal {
				t.Fatalf("error %+v, want %s for request %s", e, protocol.CodeInternal, r.RequestID)
			}
			if err := a.d.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			a.out.mu.Lock()
			defer a.out.mu.Unlock()
			for _, m := range a.out.msgs {
				if env, err := protocol.Decode(m); err == nil && env.Action == protocol.ActionWrapResult {
					t.Fatal("a wrap_result left the agent without its audit record")
				}
			}
			if !bytes.Contains(a.logs.Bytes(), []byte("AUDIT WRITE FAILED")) {
				t.Fatalf("the audit failure was not logged:\n%s", a.logs.Bytes())
			}
		})
	}
}

// blockingAuditor holds every append until release is closed.
type blockingAuditor struct {
	Auditor
	entered chan struct{}
	release chan struct{}
}

func (b *blockingAuditor) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return b.Auditor.Append(ctx, r)
}

// TestReaderKeepsAnsweringWhileAuditBlocked: Handle runs on the tunnel's
// reader goroutine. While a wrap's (fsynced, HSM-signed) audit write is
// stuck, Handle still returns at once for the next messages, so the reader
// keeps reading and answering pings; the wrap completes once the write does.
func TestReaderKeepsAnsweringWhileAuditBlocked(t *testing.T) {
	a := newAgent(t, nil)
	b := &blockingAuditor{Auditor: a.d.cfg.Audit, entered: make(chan struct{}, 1), release: make(chan struct{})}
	a.d.cfg.Audit = b
	r := a.requestStruct(nil)
	msgs := [][]byte{a.sealRequest(t, a.cp, r), []byte(`not a protocol message`), a.request(t, nil)}
	returned := make(chan struct{})
	go func() {
		for _, m := range msgs {
			a.d.Handle(context.Background(), m)
		}
		close(returned)
	}()
	select {
	case <-b.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the wrap never reached its audit write")
	}
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		close(b.release)
		t.Fatal("Handle blocked the reader while an audit write was stuck")
	}
	close(b.release)
	v, _ := protocol.ParseVerifierDER(a.id.PublicDER())
	for {
		env := a.out.next(t)
		if env.Action != protocol.ActionWrapResult {
			continue
		}
		res, err := protocol.OpenWrapResult(env, v, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if res.RequestID == r.RequestID {
			break
		}
	}
	if err := a.d.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}
