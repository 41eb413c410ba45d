package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"reflect"
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// secp256k1SPKI is the DER SPKI of a fresh secp256k1 key (crypto/x509
// cannot produce one).
func secp256k1SPKI(t testing.TB) []byte {
	t.Helper()
	k, err := secp256k1.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := secp256k1.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func ecKeyDER(t testing.TB, c elliptic.Curve) []byte {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return spkiDER(t, &k.PublicKey)
}

// resultFor makes a request/result pair for spec with a real wrapped blob.
func resultFor(t *testing.T, spec keyspec.Spec, alg keyspec.WrappingAlgorithm, pub []byte, mac []byte) (WrapRequest, WrapResult) {
	t.Helper()
	req := validWrapRequest(t)
	req.KeySpec, req.WrappingAlgorithm = spec, alg
	if mac != nil {
		req.Challenge = make([]byte, 32)
	}
	info := keyspec.MustLookup(spec)
	material := make([]byte, 32)
	if info.Asymmetric() {
		material = make([]byte, 138) // PKCS#8-sized stand-in (P-256 with public key); the blob size is what matters here
		if info.Family == keyspec.FamilyRSA {
			material = make([]byte, 1218)
		}
	}
	rpub, _, err := wrapping.ParsePublicKey(req.WrappingPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := wrapping.Wrap(nil, rpub, spec, alg, material)
	if err != nil {
		t.Fatal(err)
	}
	res := validWrapResult(t, req)
	res.WrappedMaterial, res.PublicKey, res.ChallengeMAC = blob, pub, mac
	return req, res
}

func TestWrapResultRoundTripPerFamily(t *testing.T) {
	rsa2048 := rsaKey(t, 2048)
	tests := []struct {
		name string
		spec keyspec.Spec
		alg  keyspec.WrappingAlgorithm
		pub  []byte
		mac  []byte
	}{
		{"symmetric", keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, nil, nil},
		{"hmac with challenge", keyspec.HMAC256, keyspec.RSAESOAEPSHA1, nil, make([]byte, 32)},
		{"hmac_224 with challenge", keyspec.HMAC224, keyspec.RSAESOAEPSHA256, nil, make([]byte, 28)},
		{"rsa", keyspec.RSA2048, keyspec.RSAAESKeyWrapSHA256, spkiDER(t, &rsa2048.PublicKey), nil},
		{"p256", keyspec.ECCNISTP256, keyspec.RSAESOAEPSHA256, ecKeyDER(t, elliptic.P256()), nil},
		{"p384", keyspec.ECCNISTP384, keyspec.RSAAESKeyWrapSHA1, ecKeyDER(t, elliptic.P384()), nil},
		{"secp256k1", keyspec.ECCSECGP256K1, keyspec.RSAAESKeyWrapSHA256, secp256k1SPKI(t), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, res := resultFor(t, tc.spec, tc.alg, tc.pub, tc.mac)
			got, err := OpenWrapResult(mustDecode(t, mustSeal(t, agentSigner(t), agentID, ActionWrapResult, res)),
				verifierOf(t, agentSigner(t)), testNow, testSkew)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, res) {
				t.Fatalf("got %+v\nwant %+v", got, res)
			}
			if err := got.Matches(&req); err != nil {
				t.Fatalf("Matches: %v", err)
			}
		})
	}
}

func TestOpenWrapResultRejects(t *testing.T) {
	p384 := ecKeyDER(t, elliptic.P384())
	tests := []struct {
		name string
		edit func(*WrapResult)
		want errWant
	}{
		{"missing request_id", func(m *WrapResult) { m.RequestID = "" }, errWant{missing: "request_id"}},
		{"missing job_id", func(m *WrapResult) { m.JobID = "" }, errWant{missing: "job_id"}},
		{"missing nonce", func(m *WrapResult) { m.Nonce = nil }, errWant{missing: "nonce"}},
		{"missing agent_id", func(m *WrapResult) { m.AgentID = "" }, errWant{missing: "agent_id"}},
		{"missing key_arn", func(m *WrapResult) { m.KeyARN = "" }, errWant{missing: "key_arn"}},
		{"missing hsm_label", func(m *WrapResult) { m.HSMLabel = "" }, errWant{missing: "hsm_label"}},
		{"missing hsm_key_id", func(m *WrapResult) { m.HSMKeyID = "" }, errWant{missing: "hsm_key_id"}},
		{"missing key_spec", func(m *WrapResult) { m.KeySpec = "" }, errWant{missing: "key_spec"}},
		{"missing wrapping_algorithm", func(m *WrapResult) { m.WrappingAlgorithm = "" }, errWant{missing: "wrapping_algorithm"}},
		{"missing wrapped_material", func(m *WrapResult) { m.WrappedMaterial = nil }, errWant{missing: "wrapped_material"}},
		{"missing completed_at", func(m *WrapResult) { m.CompletedAt = time.Time{} }, errWant{missing: "completed_at"}},
		{"missing public_key for rsa", func(m *WrapResult) {
			m.KeySpec, m.WrappingAlgorithm = keyspec.RSA2048, keyspec.RSAAESKeyWrapSHA256
		}, errWant{missing: "public_key"}},
		{"upper-case hsm_key_id", func(m *WrapResult) { m.HSMKeyID = "0A1B" }, errWant{invalid: "hsm_key_id"}},
		{"odd hsm_key_id", func(m *WrapResult) { m.HSMKeyID = "abc" }, errWant{invalid: "hsm_key_id"}},
		{"agent id with space", func(m *WrapResult) { m.AgentID = "agent 1" }, errWant{invalid: "agent_id"}},
		{"illegal algorithm for spec", func(m *WrapResult) { m.WrappingAlgorithm = keyspec.RSAAESKeyWrapSHA256 }, errWant{invalid: "wrapping_algorithm"}},
		{"public key for symmetric", func(m *WrapResult) { m.PublicKey = p384 }, errWant{invalid: "public_key"}},
		{"wrong curve", func(m *WrapResult) {
			m.KeySpec, m.PublicKey = keyspec.ECCNISTP256, p384
		}, errWant{invalid: "public_key"}},
		{"wrong rsa size", func(m *WrapResult) {
			m.KeySpec, m.WrappingAlgorithm, m.PublicKey = keyspec.RSA3072, keyspec.RSAAESKeyWrapSHA1, spkiDER(t, &rsaKey(t, 2048).PublicKey)
		}, errWant{invalid: "public_key"}},
		{"secp256k1 point off the curve", func(m *WrapResult) {
			der := secp256k1SPKI(t)
			der[len(der)-1] ^= 1
			m.KeySpec, m.PublicKey = keyspec.ECCSECGP256K1, der
		}, errWant{invalid: "public_key"}},
		{"nist key for secp256k1", func(m *WrapResult) {
			m.KeySpec, m.PublicKey = keyspec.ECCSECGP256K1, ecKeyDER(t, elliptic.P256())
		}, errWant{invalid: "public_key"}},
		{"challenge mac for symmetric", func(m *WrapResult) { m.ChallengeMAC = make([]byte, 32) }, errWant{invalid: "challenge_mac"}},
		{"challenge mac wrong length", func(m *WrapResult) { m.KeySpec, m.ChallengeMAC = keyspec.HMAC512, make([]byte, 32) }, errWant{invalid: "challenge_mac"}},
		{"raw key as wrapped material", func(m *WrapResult) { m.WrappedMaterial = make([]byte, 32) }, errWant{invalid: "wrapped_material"}},
		{"completed in the future", func(m *WrapResult) { m.CompletedAt = testNow.Add(time.Hour) }, errWant{is: []error{ErrNotYetValid}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validWrapResult(t, validWrapRequest(t))
			tc.edit(&m)
			got, err := OpenWrapResult(mustDecode(t, sealRaw(t, agentSigner(t), agentID, ActionWrapResult, mustJSON(t, m))),
				verifierOf(t, agentSigner(t)), testNow, testSkew)
			if got != nil {
				t.Fatalf("opened %+v", got)
			}
			checkErr(t, err, tc.want)
		})
	}
}

func TestWrapResultMatches(t *testing.T) {
	req, res := resultFor(t, keyspec.HMAC256, keyspec.RSAESOAEPSHA256, nil, make([]byte, 32))
	rewrap := req
	rewrap.Operation = OpRewrap
	tests := []struct {
		name    string
		req     WrapRequest
		edit    func(*WrapResult)
		invalid string
		missing string
	}{
		{"matches", req, func(*WrapResult) {}, "", ""},
		{"other request", req, func(m *WrapResult) { m.RequestID = "req-9" }, "request_id", ""},
		{"other job", req, func(m *WrapResult) { m.JobID = "job-9" }, "job_id", ""},
		{"nonce not echoed", req, func(m *WrapResult) { m.Nonce = testNonce(9) }, "nonce", ""},
		{"other key arn", req, func(m *WrapResult) {
			m.KeyARN = "arn:aws:kms:eu-west-3:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab"
		}, "key_arn", ""},
		{"other key spec", req, func(m *WrapResult) { m.KeySpec = keyspec.HMAC512 }, "key_spec", ""},
		{"other algorithm", req, func(m *WrapResult) { m.WrappingAlgorithm = keyspec.RSAESOAEPSHA1 }, "wrapping_algorithm", ""},
		{"rewrap of another label", rewrap, func(m *WrapResult) { m.HSMLabel = "kf-other" }, "hsm_label", ""},
		{"challenge unanswered", req, func(m *WrapResult) { m.ChallengeMAC = nil }, "", "challenge_mac"},
		{"blob for another wrapping key size", req, func(m *WrapResult) { m.WrappedMaterial = make([]byte, 512) }, "wrapped_material", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := res
			tc.edit(&m)
			err := m.Matches(&tc.req)
			if tc.invalid == "" && tc.missing == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErr(t, err, errWant{invalid: tc.invalid, missing: tc.missing})
		})
	}
	// A challenge MAC nobody asked for.
	noChallenge := req
	noChallenge.Challenge = nil
	checkErr(t, res.Matches(&noChallenge), errWant{invalid: "challenge_mac"})
	// Hybrid blobs: RSA block plus a whole number of 8-byte semiblocks.
	hreq, hres := resultFor(t, keyspec.RSA2048, keyspec.RSAAESKeyWrapSHA256, spkiDER(t, &rsaKey(t, 2048).PublicKey), nil)
	if err := hres.Matches(&hreq); err != nil {
		t.Fatal(err)
	}
	hres.WrappedMaterial = hres.WrappedMaterial[:len(hres.WrappedMaterial)-3]
	checkErr(t, hres.Matches(&hreq), errWant{invalid: "wrapped_material"})
}
