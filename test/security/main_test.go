package security

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/protocol"
	"github.com/keyferry/keyferry/test/apigwemu"
	"github.com/keyferry/keyferry/test/logsink"
	"github.com/keyferry/keyferry/test/sandbox"
)

// The suite shares one sandbox (one per process: it sets process env).
var (
	sb       *sandbox.Sandbox
	tee      = &wireTee{}
	gwLog    = &logsink.Buffer{}
	firstRun map[string]*store.Job
)

// wireTee records every websocket message in both directions.
type wireTee struct {
	mu   sync.Mutex
	msgs []apigwemu.FaultPoint
}

func (w *wireTee) fault(p apigwemu.FaultPoint) apigwemu.FaultAction {
	w.mu.Lock()
	p.Data = bytes.Clone(p.Data)
	w.msgs = append(w.msgs, p)
	w.mu.Unlock()
	return apigwemu.Deliver
}

// since returns inbound messages recorded after index from, and the new length.
func (w *wireTee) since(from int) ([][]byte, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]byte
	for _, m := range w.msgs[from:] {
		if m.Direction == apigwemu.Inbound {
			out = append(out, m.Data)
		}
	}
	return out, len(w.msgs)
}

// find returns inbound or outbound messages containing needle.
func (w *wireTee) find(dir apigwemu.Direction, needle string) [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][]byte
	for _, m := range w.msgs {
		if m.Direction != dir {
			continue
		}
		hay := m.Data
		if env, err := protocol.Decode(m.Data); err == nil {
			hay = append(bytes.Clone(m.Data), env.Payload...)
		}
		if bytes.Contains(hay, []byte(needle)) {
			out = append(out, m.Data)
		}
	}
	return out
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var err error
	sb, err = sandbox.Start(ctx, sandbox.Options{
		Log:          slog.New(slog.NewJSONHandler(gwLog, nil)),
		GatewayFault: tee.fault,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "security: sandbox:", err)
		return 1
	}
	defer sb.Close()
	// One clean rotation of every group, so HSM keys exist and are pinned.
	if firstRun, err = sb.RotateAll(ctx, "schedule", 90*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "security: first rotation:", err)
		return 1
	}
	return m.Run()
}
