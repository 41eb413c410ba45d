package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
)

var (
	wkOnce sync.Once
	wk4096 *WrappingKey
	wkErr  error
)

func wrappingKey(tb testing.TB) *WrappingKey {
	tb.Helper()
	wkOnce.Do(func() { wk4096, wkErr = NewWrappingKey(WrapKeyBits) })
	if wkErr != nil {
		tb.Fatal(wkErr)
	}
	return wk4096
}

func openToken(tb testing.TB, sessions int) *hsm.HSM {
	tb.Helper()
	cfg := hsmtest.SoftHSM(tb)
	cfg.PoolSize = sessions
	cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	h, err := hsm.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// TestDirectWrapsVerifies: the direct loop does n keygen+wraps whose blobs
// unwrap to 32-byte AES keys under the benchmark's wrapping key, and a
// wrong wrapping key is detected.
func TestDirectWrapsVerifies(t *testing.T) {
	h := openToken(t, 2)
	wk := wrappingKey(t)
	r, err := DirectWraps(context.Background(), h, wk, "t", 2, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 6 || r.Verified != 6 || r.PerSecond() <= 0 {
		t.Fatalf("rate %+v", r)
	}
	other, err := NewWrappingKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Generate(context.Background(), "kf/t/99", WrapKeySpec); err != nil {
		t.Fatal(err)
	}
	blob, err := h.Wrap(context.Background(), "kf/t/99", other.DER, WrapAlgorithm)
	if err != nil {
		t.Fatal(err)
	}
	if err := wk.CheckBlob(blob); err == nil {
		t.Fatal("blob wrapped under another key passed CheckBlob")
	}
}

// TestAgentProcessWraps runs the real keyferry-agent against the loopback
// control plane: every result verifies under the identity from hello and
// unwraps to key material.
func TestAgentProcessWraps(t *testing.T) {
	root := moduleRoot(t)
	dir := t.TempDir()
	bin := buildAgent(t, root, dir)
	tokDir := filepath.Join(dir, "tok")
	cfg, err := hsmtest.NewSoftHSMTokenForChild(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := StartAgentProcess(ctx, bin, t.TempDir(), cfg, filepath.Join(tokDir, "softhsm2.conf"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r, err := a.Wraps(ctx, wrappingKey(t), "agenttest", 5, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 5 || r.Verified != 5 {
		t.Fatalf("rate %+v", r)
	}
	m, err := ReadMemory(a.PID())
	if err != nil || m.RSSMB <= 0 {
		t.Fatalf("agent memory %+v, %v", m, err)
	}
}

// BenchmarkDirectWrap is the bare PKCS#11 keygen+wrap loop (AES-256 under
// RSA_4096 OAEP-SHA1) at 1 and 2 sessions.
func BenchmarkDirectWrap(b *testing.B) {
	for _, sessions := range []int{1, 2} {
		b.Run(fmt.Sprintf("sessions%d", sessions), func(b *testing.B) {
			h := openToken(b, sessions)
			wk := wrappingKey(b)
			b.ResetTimer()
			r, err := DirectWraps(context.Background(), h, wk, fmt.Sprintf("b%d-%d", sessions, b.N), sessions, b.N, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(r.PerSecond(), "wraps/s")
		})
	}
}

// BenchmarkEmulatorWrappingKeyGen is what the KMS emulator spends per
// GetParametersForImport when its pool is empty (rsa.GenerateKey of the
// wrapping key spec): why the fleet groups pin RSA_2048.
func BenchmarkEmulatorWrappingKeyGen(b *testing.B) {
	for _, bits := range []int{2048, 4096} {
		b.Run(fmt.Sprintf("RSA_%d", bits), func(b *testing.B) {
			for range b.N {
				if _, err := NewWrappingKey(bits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
