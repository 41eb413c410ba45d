package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func openReq(t *testing.T, b []byte) (*WrapRequest, error) {
	t.Helper()
	env, err := Decode(b)
	if err != nil {
		return nil, err
	}
	return OpenWrapRequest(env, verifierOf(t, cpSigner(t)), testNow, testSkew)
}

func TestOpenWrapRequestRejectsFields(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*WrapRequest)
		want errWant
	}{
		{"missing request_id", func(m *WrapRequest) { m.RequestID = "" }, errWant{missing: "request_id"}},
		{"missing job_id", func(m *WrapRequest) { m.JobID = "" }, errWant{missing: "job_id"}},
		{"missing nonce", func(m *WrapRequest) { m.Nonce = nil }, errWant{missing: "nonce"}},
		{"missing account", func(m *WrapRequest) { m.Account = "" }, errWant{missing: "account"}},
		{"missing region", func(m *WrapRequest) { m.Region = "" }, errWant{missing: "region"}},
		{"missing group", func(m *WrapRequest) { m.Group = "" }, errWant{missing: "group"}},
		{"missing key_arn", func(m *WrapRequest) { m.KeyARN = "" }, errWant{missing: "key_arn"}},
		{"missing key_spec", func(m *WrapRequest) { m.KeySpec = "" }, errWant{missing: "key_spec"}},
		{"missing operation", func(m *WrapRequest) { m.Operation = "" }, errWant{missing: "operation"}},
		{"missing hsm_label for rewrap", func(m *WrapRequest) { m.Operation, m.HSMLabel = OpRewrap, "" }, errWant{missing: "hsm_label"}},
		{"missing hsm_label for generate (the control plane plans every generation)", func(m *WrapRequest) { m.Operation, m.HSMLabel = OpGenerate, "" }, errWant{missing: "hsm_label"}},
		{"missing wrapping_algorithm", func(m *WrapRequest) { m.WrappingAlgorithm = "" }, errWant{missing: "wrapping_algorithm"}},
		{"missing wrapping_key_spec", func(m *WrapRequest) { m.WrappingKeySpec = "" }, errWant{missing: "wrapping_key_spec"}},
		{"missing wrapping_public_key", func(m *WrapRequest) { m.WrappingPublicKey = nil }, errWant{missing: "wrapping_public_key"}},
		{"missing issued_at", func(m *WrapRequest) { m.IssuedAt = time.Time{} }, errWant{missing: "issued_at"}},
		{"missing expires_at", func(m *WrapRequest) { m.ExpiresAt = time.Time{} }, errWant{missing: "expires_at"}},

		{"short nonce", func(m *WrapRequest) { m.Nonce = m.Nonce[:MinNonceBytes-1] }, errWant{invalid: "nonce"}},
		{"long nonce", func(m *WrapRequest) { m.Nonce = make(Nonce, MaxNonceBytes+1) }, errWant{invalid: "nonce"}},
		{"control char in request_id", func(m *WrapRequest) { m.RequestID = "req\n1" }, errWant{invalid: "request_id"}},
		{"oversized group", func(m *WrapRequest) { m.Group = strings.Repeat("g", MaxTextBytes+1) }, errWant{invalid: "group"}},
		{"bad account", func(m *WrapRequest) { m.Account = "1234" }, errWant{invalid: "account"}},
		{"bad region", func(m *WrapRequest) { m.Region = "Europe" }, errWant{invalid: "region"}},
		{"alias arn", func(m *WrapRequest) { m.KeyARN = "arn:aws:kms:eu-west-3:111122223333:alias/payments" }, errWant{invalid: "key_arn"}},
		{"arn in another region", func(m *WrapRequest) {
			m.KeyARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, errWant{invalid: "key_arn"}},
		{"arn in another account", func(m *WrapRequest) {
			m.KeyARN = "arn:aws:kms:eu-west-3:999999999999:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, errWant{invalid: "key_arn"}},
		{"unknown key spec", func(m *WrapRequest) { m.KeySpec = "SM2" }, errWant{invalid: "key_spec", is: []error{keyspec.ErrUnknownSpec}}},
		{"unknown operation", func(m *WrapRequest) { m.Operation = "delete" }, errWant{invalid: "operation"}},
		{"pkcs1 v1.5", func(m *WrapRequest) { m.WrappingAlgorithm = keyspec.RSAESPKCS1V15Rejected }, errWant{invalid: "wrapping_algorithm"}},
		{"unknown algorithm", func(m *WrapRequest) { m.WrappingAlgorithm = "AES_GCM" }, errWant{invalid: "wrapping_algorithm"}},
		{"unknown wrapping key spec", func(m *WrapRequest) { m.WrappingKeySpec = "RSA_1024" }, errWant{invalid: "wrapping_key_spec"}},
		{"wrapping key spec lies about the key size", func(m *WrapRequest) { m.WrappingKeySpec = keyspec.WrapRSA4096 }, errWant{invalid: "wrapping_key_spec"}},
		{"wrapping key not RSA", func(m *WrapRequest) { m.WrappingPublicKey = spkiDER(t, &p256.PublicKey) }, errWant{invalid: "wrapping_public_key"}},
		{"wrapping key garbage", func(m *WrapRequest) { m.WrappingPublicKey = []byte("not der") }, errWant{invalid: "wrapping_public_key"}},
		{"challenge for a symmetric key", func(m *WrapRequest) { m.Challenge = make([]byte, 32) }, errWant{invalid: "challenge"}},
		{"short challenge", func(m *WrapRequest) { m.KeySpec, m.Challenge = keyspec.HMAC256, make([]byte, 8) }, errWant{invalid: "challenge"}},
		{"expiry before issue", func(m *WrapRequest) { m.ExpiresAt = m.IssuedAt.Add(-time.Second) }, errWant{invalid: "expires_at"}},
		{"expiry equals issue", func(m *WrapRequest) { m.ExpiresAt = m.IssuedAt }, errWant{invalid: "expires_at"}},
		{"lifetime over cap", func(m *WrapRequest) { m.ExpiresAt = m.IssuedAt.Add(MaxRequestLifetime + time.Second) }, errWant{invalid: "expires_at"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validWrapRequest(t)
			tc.edit(&m)
			// Sealing refuses it at the source...
			if _, err := Seal(t.Context(), cpSigner(t), cpID, ActionWrapRequest, m); err == nil {
				t.Fatal("Seal accepted an invalid request")
			}
			// ...and a correctly signed copy is refused by the receiver.
			got, err := openReq(t, sealRaw(t, cpSigner(t), cpID, ActionWrapRequest, mustJSON(t, m)))
			if got != nil {
				t.Fatalf("opened %+v", got)
			}
			checkErr(t, err, tc.want)
		})
	}
}

// TestOpenWrapRequestIllegalWrapping: the (key spec, algorithm, actual
// wrapping key size) triple must be legal for KMS.
func TestOpenWrapRequestIllegalWrapping(t *testing.T) {
	tests := []struct {
		name  string
		spec  keyspec.Spec
		alg   keyspec.WrappingAlgorithm
		bits  int
		legal bool
	}{
		{"symmetric OAEP-256 RSA-2048", keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, 2048, true},
		{"symmetric hybrid", keyspec.SymmetricDefault, keyspec.RSAAESKeyWrapSHA256, 2048, false},
		{"hmac hybrid", keyspec.HMAC512, keyspec.RSAAESKeyWrapSHA1, 3072, false},
		{"rsa OAEP", keyspec.RSA2048, keyspec.RSAESOAEPSHA256, 4096, false},
		{"rsa hybrid", keyspec.RSA4096, keyspec.RSAAESKeyWrapSHA256, 2048, true},
		{"p521 OAEP under RSA-2048", keyspec.ECCNISTP521, keyspec.RSAESOAEPSHA256, 2048, false},
		{"p521 OAEP under RSA-3072", keyspec.ECCNISTP521, keyspec.RSAESOAEPSHA256, 3072, true},
		{"secp256k1 hybrid", keyspec.ECCSECGP256K1, keyspec.RSAAESKeyWrapSHA1, 2048, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validWrapRequest(t)
			m.KeySpec, m.WrappingAlgorithm = tc.spec, tc.alg
			m.WrappingPublicKey = spkiDER(t, &rsaKey(t, tc.bits).PublicKey)
			m.WrappingKeySpec, _ = keyspec.WrappingKeySpecForBits(tc.bits)
			got, err := openReq(t, sealRaw(t, cpSigner(t), cpID, ActionWrapRequest, mustJSON(t, m)))
			if tc.legal {
				if err != nil {
					t.Fatalf("legal combination refused: %v", err)
				}
				if got.KeySpec != tc.spec {
					t.Fatalf("key spec %s", got.KeySpec)
				}
				return
			}
			checkErr(t, err, errWant{invalid: "wrapping_algorithm"})
			var ice *keyspec.IllegalCombinationError
			if !errors.As(err, &ice) || ice.Spec != tc.spec || ice.Algorithm != tc.alg {
				t.Fatalf("err = %v, want *keyspec.IllegalCombinationError for %s/%s", err, tc.spec, tc.alg)
			}
			if CodeFor(err) != CodeUnsupported {
				t.Fatalf("CodeFor = %s, want unsupported", CodeFor(err))
			}
		})
	}
}

func TestOpenWrapRequestClock(t *testing.T) {
	base := validWrapRequest(t) // issued now-1m, expires now+9m
	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"fresh", testNow, nil},
		{"just before expiry", base.ExpiresAt.Add(-time.Second), nil},
		{"expired within skew", base.ExpiresAt.Add(testSkew), nil},
		{"expired beyond skew", base.ExpiresAt.Add(testSkew + time.Second), ErrExpired},
		{"long expired", base.ExpiresAt.Add(24 * time.Hour), ErrExpired},
		{"issued in the future within skew", base.IssuedAt.Add(-testSkew), nil},
		{"issued in the future beyond skew", base.IssuedAt.Add(-testSkew - time.Second), ErrNotYetValid},
	}
	b := mustSeal(t, cpSigner(t), cpID, ActionWrapRequest, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenWrapRequest(mustDecode(t, b), verifierOf(t, cpSigner(t)), tc.now, testSkew)
			if tc.want == nil {
				if err != nil || got == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			checkErr(t, err, errWant{is: []error{tc.want}})
			if CodeFor(err) != CodeExpired {
				t.Fatalf("CodeFor = %s", CodeFor(err))
			}
			var ce *ClockError
			if got != nil || !errors.As(err, &ce) || ce.RequestID != base.RequestID || ce.JobID != base.JobID {
				t.Fatalf("clock refusal: message %v, error %#v; want no message and a ClockError naming %s/%s", got, err, base.RequestID, base.JobID)
			}
		})
	}
}

func TestOpenWrapRequestRejectsPayloadJSON(t *testing.T) {
	m := validWrapRequest(t)
	tests := []struct {
		name    string
		payload []byte
		want    errWant
	}{
		{"unknown field", editJSON(t, m, func(o map[string]any) { o["plaintext"] = "x" }), errWant{is: []error{ErrMalformed}}},
		{"wrong type", editJSON(t, m, func(o map[string]any) { o["request_id"] = 7 }), errWant{is: []error{ErrMalformed}, invalid: "request_id"}},
		{"nonce bad base64", editJSON(t, m, func(o map[string]any) { o["nonce"] = "%%%" }), errWant{is: []error{ErrMalformed}}},
		{"time with offset", editJSON(t, m, func(o map[string]any) { o["issued_at"] = testNow.In(fixedZone()).Format(time.RFC3339) }), errWant{invalid: "issued_at"}},
		{"time not RFC 3339", editJSON(t, m, func(o map[string]any) { o["issued_at"] = "yesterday" }), errWant{is: []error{ErrMalformed}}},
		{"upper-case field", editJSON(t, m, func(o map[string]any) { o["Request_ID"] = o["request_id"]; delete(o, "request_id") }), errWant{is: []error{ErrMalformed}}},
		{"duplicate key_arn", append(mustJSON(t, m)[:len(mustJSON(t, m))-1], []byte(`,"key_arn":"arn:aws:kms:eu-west-3:111122223333:key/other"}`)...), errWant{is: []error{ErrMalformed}}},
		{"null object", []byte(`null`), errWant{is: []error{ErrMalformed}}},
		{"array", []byte(`[]`), errWant{is: []error{ErrMalformed}}},
		{"two objects", append(mustJSON(t, m), mustJSON(t, m)...), errWant{is: []error{ErrMalformed}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openReq(t, sealRaw(t, cpSigner(t), cpID, ActionWrapRequest, tc.payload))
			checkErr(t, err, tc.want)
		})
	}
}

func TestOpenWrapRequestRewrapAndChallenge(t *testing.T) {
	m := validWrapRequest(t)
	m.Operation, m.KeySpec, m.Challenge = OpRewrap, keyspec.HMAC384, make([]byte, 32)
	got, err := openReq(t, mustSeal(t, cpSigner(t), cpID, ActionWrapRequest, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Operation != OpRewrap || got.HSMLabel != m.HSMLabel || len(got.Challenge) != 32 {
		t.Fatalf("got %+v", got)
	}
}
