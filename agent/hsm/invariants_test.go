//go:build cgo

package hsm_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// Invariant 1 (No plaintext key material leaves the HSM): no non-test source
// file of the package mentions CKA_VALUE, so no code path can ask for it.
func TestNoPlaintextKeyMaterialLeavesHSM_NoCodePathReadsCKAValue(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`CKA_VALUE\b`)
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		if loc := re.FindIndex(src); loc != nil {
			line := 1 + bytes.Count(src[:loc[0]], []byte("\n"))
			t.Errorf("%s:%d mentions CKA_VALUE", f, line)
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d source files; wrong directory?", checked)
	}
}

// Invariant 1: a generated (sensitive) key refuses CKA_VALUE with
// CKR_ATTRIBUTE_SENSITIVE on both tokens (secret keys, and EC private keys,
// whose CKA_VALUE is the scalar d; RSA private keys have no CKA_VALUE).
func TestNoPlaintextKeyMaterialLeavesHSM_SensitiveValueUnreadable(t *testing.T) {
	ctx := context.Background()
	forEachToken(t, func(t *testing.T, tok *token) {
		specs := []keyspec.Spec{keyspec.SymmetricDefault, keyspec.HMAC224, keyspec.HMAC512}
		if tok.name == "softhsm2" {
			specs = append(specs, keyspec.ECCNISTP256, keyspec.ECCSECGP256K1) // EC private keys hold d in CKA_VALUE
		}
		for _, spec := range specs {
			label := tok.key(t, spec, true)
			v, err := tok.h.ReadValueForTest(ctx, label)
			var he *hsm.Error
			if !errors.As(err, &he) || he.Code != pkcs11.CKR_ATTRIBUTE_SENSITIVE || !errors.Is(err, hsm.ErrSensitive) {
				t.Fatalf("%s: reading CKA_VALUE gave %d bytes, err %v; want CKR_ATTRIBUTE_SENSITIVE", spec, len(v), err)
			}
		}
	})
}

// Invariant 1: logs of generate + wrap carry neither the PIN nor the key
// material nor the wrapped blob.
func TestNoPlaintextKeyMaterialLeavesHSM_LogsCarryNoSecrets(t *testing.T) {
	ctx := context.Background()
	tok := tokens[0]
	var buf bytes.Buffer
	cfg := tok.cfg
	cfg.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := hsm.Open(ctx, cfg) // a second HSM on the same token
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	label := newLabel(t, "logs")
	if _, err := h.Generate(ctx, label, keyspec.HMAC256, hsm.NonSensitiveForTest()); err != nil {
		t.Fatal(err)
	}
	priv := kmsWrappingKey(t, keyspec.WrapRSA2048)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	blob, err := h.Wrap(ctx, label, der, keyspec.RSAESOAEPSHA1)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := wrapping.Unwrap(priv, keyspec.RSAESOAEPSHA1, blob)
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := os.ReadFile(cfg.PINFile)
	logs := buf.String()
	if !strings.Contains(logs, "hsm key wrapped") {
		t.Fatalf("expected wrap log lines, got %q", logs)
	}
	for name, needle := range map[string]string{
		"PIN":         strings.TrimSpace(string(pin)),
		"secret hex":  hex.EncodeToString(secret),
		"blob hex":    hex.EncodeToString(blob[:16]),
		"secret text": string(secret[:8]),
	} {
		if strings.Contains(logs, needle) {
			t.Errorf("logs contain the %s", name)
		}
	}
}
