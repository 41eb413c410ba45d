package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// WrapSpec is what every wrap benchmark generates and wraps: an AES-256 key
// (SYMMETRIC_DEFAULT) under RSAES_OAEP_SHA_1 with an RSA_4096 wrapping key.
const (
	WrapKeySpec   = keyspec.SymmetricDefault
	WrapAlgorithm = keyspec.RSAESOAEPSHA1
	WrapKeyBits   = 4096
)

// WrappingKey is a KMS-side RSA wrapping key pair: the public half goes to
// the wrapper, the private half verifies blobs.
type WrappingKey struct {
	Private *rsa.PrivateKey
	DER     []byte // SPKI of the public key, as GetParametersForImport returns it
}

// NewWrappingKey generates an RSA wrapping key of bits.
func NewWrappingKey(bits int) (*WrappingKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, fmt.Errorf("bench: wrapping key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, err
	}
	return &WrappingKey{Private: k, DER: der}, nil
}

// PEM is the public key as PEM (for openssl).
func (w *WrappingKey) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: w.DER})
}

// CheckBlob unwraps blob and checks it holds WrapKeySpec material.
func (w *WrappingKey) CheckBlob(blob []byte) error {
	m, err := wrapping.Unwrap(w.Private, WrapAlgorithm, blob)
	if err != nil {
		return fmt.Errorf("bench: unwrap: %w", err)
	}
	info, err := keyspec.Lookup(WrapKeySpec)
	if err != nil {
		return err
	}
	if len(m) != info.KeyBytes {
		return fmt.Errorf("bench: unwrapped %d bytes, want %d", len(m), info.KeyBytes)
	}
	return nil
}

// Rate is a throughput measurement.
type Rate struct {
	Ops     int           `json:"ops"`
	Elapsed time.Duration `json:"elapsed"`
	// Verified counts results unwrapped and checked by the benchmark.
	Verified int `json:"verified"`
	// Failed counts operations answered with an error (not in Ops).
	Failed       int    `json:"failed"`
	FirstFailure string `json:"first_failure,omitempty"`
}

// PerSecond is Ops / Elapsed.
func (r Rate) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

// Generator is the part of agent/hsm the direct loop drives.
type Generator interface {
	Generate(ctx context.Context, label string, spec keyspec.Spec, opts ...hsm.GenerateOption) (*hsm.Key, error)
	Wrap(ctx context.Context, label string, wrappingKeyDER []byte, alg keyspec.WrappingAlgorithm) ([]byte, error)
}

var _ Generator = (*hsm.HSM)(nil)

// DirectWraps is the bare PKCS#11 loop: sessions goroutines each generate a
// key in the HSM and wrap it (no policy, audit, signatures or network),
// until n keys are done. Labels are prefix/1..n. Every verifyEvery-th blob
// is unwrapped and checked (0 = none).
func DirectWraps(ctx context.Context, h Generator, wk *WrappingKey, prefix string, sessions, n, verifyEvery int) (Rate, error) {
	if sessions < 1 || n < 1 {
		return Rate{}, fmt.Errorf("bench: sessions and n must be >= 1")
	}
	var next atomic.Int64
	var verified atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n || ctx.Err() != nil {
					return
				}
				label := fmt.Sprintf("kf/%s/%d", prefix, i)
				if _, err := h.Generate(ctx, label, WrapKeySpec); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("bench: generate %s: %w", label, err) })
					return
				}
				blob, err := h.Wrap(ctx, label, wk.DER, WrapAlgorithm)
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("bench: wrap %s: %w", label, err) })
					return
				}
				if verifyEvery > 0 && i%verifyEvery == 0 {
					if err := wk.CheckBlob(blob); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					verified.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r := Rate{Ops: n, Elapsed: time.Since(start), Verified: int(verified.Load())}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return r, firstErr
}
