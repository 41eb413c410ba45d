package protocol

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// Fixed test clock: the seeds in testdata/fuzz were made at this instant.
var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const testSkew = 2 * time.Minute

// fixedSigner returns a P-256 signer with a deterministic private scalar, so
// committed fuzz seeds stay verifiable.
func fixedSigner(t testing.TB, b byte) *ECDSASigner {
	t.Helper()
	d := make([]byte, 32)
	for i := range d {
		d[i] = b
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewECDSASigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	cpID    = "alias/keyferry-control-plane"
	agentID = "agent-paris-01"
)

func cpSigner(t testing.TB) *ECDSASigner    { return fixedSigner(t, 0x11) }
func agentSigner(t testing.TB) *ECDSASigner { return fixedSigner(t, 0x22) }
func rogueSigner(t testing.TB) *ECDSASigner { return fixedSigner(t, 0x33) }

func verifierOf(t testing.TB, s *ECDSASigner) *Verifier {
	t.Helper()
	v, err := NewVerifier(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var rsaKeys sync.Map // bits -> *rsa.PrivateKey

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	if k, ok := rsaKeys.Load(bits); ok {
		return k.(*rsa.PrivateKey)
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	actual, _ := rsaKeys.LoadOrStore(bits, k)
	return actual.(*rsa.PrivateKey)
}

func spkiDER(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func testNonce(b byte) Nonce {
	n := make(Nonce, NonceBytes)
	for i := range n {
		n[i] = b + byte(i)
	}
	return n
}

func validWrapRequest(t testing.TB) WrapRequest {
	return WrapRequest{
		RequestID:         "req-0001",
		JobID:             "job-0001",
		Nonce:             testNonce(1),
		Account:           "111122223333",
		Region:            "eu-west-3",
		Group:             "payments",
		KeyARN:            "arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		KeySpec:           keyspec.SymmetricDefault,
		Operation:         OpGenerate,
		HSMLabel:          "kf-payments-0001",
		WrappingAlgorithm: keyspec.RSAESOAEPSHA256,
		WrappingKeySpec:   keyspec.WrapRSA2048,
		WrappingPublicKey: spkiDER(t, &rsaKey(t, 2048).PublicKey),
		IssuedAt:          testNow.Add(-time.Minute),
		ExpiresAt:         testNow.Add(9 * time.Minute),
	}
}

// validWrapResult answers req with real wrapped bytes of the right size.
func validWrapResult(t testing.TB, req WrapRequest) WrapResult {
	t.Helper()
	pub, _, err := wrapping.ParsePublicKey(req.WrappingPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := wrapping.Wrap(nil, pub, req.KeySpec, req.WrappingAlgorithm, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return WrapResult{
		RequestID:         req.RequestID,
		JobID:             req.JobID,
		Nonce:             req.Nonce,
		AgentID:           agentID,
		KeyARN:            req.KeyARN,
		HSMLabel:          req.HSMLabel,
		HSMKeyID:          "0a1b2c3d",
		KeySpec:           req.KeySpec,
		WrappingAlgorithm: req.WrappingAlgorithm,
		WrappedMaterial:   blob,
		CompletedAt:       testNow,
	}
}

func validHello(t testing.TB) Hello {
	return Hello{
		AgentID:           agentID,
		Version:           "0.1.0",
		HSMPool:           "softhsm-paris",
		IdentityPublicKey: agentSigner(t).PublicKeyDER(),
		Capabilities: []Capability{
			{KeySpec: keyspec.SymmetricDefault, Algorithms: []keyspec.WrappingAlgorithm{keyspec.RSAESOAEPSHA256}, WrappingKeySpecs: []keyspec.WrappingKeySpec{keyspec.WrapRSA4096, keyspec.WrapRSA2048}},
			{KeySpec: keyspec.RSA2048, Algorithms: []keyspec.WrappingAlgorithm{keyspec.RSAAESKeyWrapSHA256}, WrappingKeySpecs: []keyspec.WrappingKeySpec{keyspec.WrapRSA4096}},
		},
		Pending: []string{"req-0000"},
		SentAt:  testNow,
	}
}

func validError() Error {
	return Error{RequestID: "req-0001", JobID: "job-0001", AgentID: agentID, Code: CodePolicyRefused, Message: "group payments not allowed"}
}

func validHeartbeat() Heartbeat {
	return Heartbeat{AgentID: agentID, Seq: 42, SentAt: testNow, InFlight: 1}
}

func mustSeal(t testing.TB, s Signer, id string, a Action, m any) []byte {
	t.Helper()
	b, err := Seal(context.Background(), s, id, a, m)
	if err != nil {
		t.Fatalf("Seal(%s): %v", a, err)
	}
	return b
}

func mustDecode(t testing.TB, b []byte) *Envelope {
	t.Helper()
	env, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v\n%s", err, b)
	}
	return env
}

// sealRaw signs arbitrary payload bytes (bypassing validation) to build
// envelopes that only the Open* checks can reject.
func sealRaw(t testing.TB, s Signer, id string, a Action, payload []byte) []byte {
	t.Helper()
	b, err := sealBytes(context.Background(), s, id, a, payload)
	if err != nil {
		t.Fatalf("sealBytes: %v", err)
	}
	return b
}

// editJSON marshals m, applies edit to the generic object, and re-marshals.
func editJSON(t testing.TB, m any, edit func(map[string]any)) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	edit(obj)
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantErr asserts err matches: a sentinel (errors.Is), a missing field name
// ("missing:x"), an invalid field name ("invalid:x"), and optional extra
// errors.Is targets.
type errWant struct {
	is      []error
	missing string
	invalid string
}

func checkErr(t *testing.T, err error, w errWant) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %+v", w)
	}
	for _, target := range w.is {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	if w.missing != "" {
		var mf *MissingFieldError
		if !errors.As(err, &mf) || mf.Field != w.missing {
			t.Errorf("err = %v, want *MissingFieldError{%q}", err, w.missing)
		}
	}
	if w.invalid != "" {
		var inv *InvalidFieldError
		if !errors.As(err, &inv) || inv.Field != w.invalid {
			t.Errorf("err = %v, want *InvalidFieldError{%q}", err, w.invalid)
		}
	}
	if CodeFor(err) == CodeInternal {
		t.Errorf("CodeFor(%v) = internal; every protocol rejection must map to a specific code", err)
	}
}

func fixedZone() *time.Location { return time.FixedZone("CET", 3600) }

func mustJSON(t testing.TB, m any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
