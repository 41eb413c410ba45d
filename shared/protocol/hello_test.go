package protocol

import (
	"testing"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func TestOpenHelloRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Hello)
		want errWant
	}{
		{"missing agent_id", func(m *Hello) { m.AgentID = "" }, errWant{missing: "agent_id"}},
		{"missing version", func(m *Hello) { m.Version = "" }, errWant{missing: "version"}},
		{"missing hsm_pool", func(m *Hello) { m.HSMPool = "" }, errWant{missing: "hsm_pool"}},
		{"missing identity_public_key", func(m *Hello) { m.IdentityPublicKey = nil }, errWant{missing: "identity_public_key"}},
		{"missing capabilities", func(m *Hello) { m.Capabilities = nil }, errWant{missing: "capabilities"}},
		{"missing sent_at", func(m *Hello) { m.SentAt = time.Time{} }, errWant{missing: "sent_at"}},
		{"missing capability key_spec", func(m *Hello) { m.Capabilities[1].KeySpec = "" }, errWant{missing: "capabilities[1].key_spec"}},
		{"missing capability algorithms", func(m *Hello) { m.Capabilities[0].Algorithms = nil }, errWant{missing: "capabilities[0].algorithms"}},
		{"missing capability wrapping_key_specs", func(m *Hello) { m.Capabilities[0].WrappingKeySpecs = nil }, errWant{missing: "capabilities[0].wrapping_key_specs"}},
		{"unknown capability spec", func(m *Hello) { m.Capabilities[1].KeySpec = "SM2" }, errWant{invalid: "capabilities[1].key_spec", is: []error{keyspec.ErrUnknownSpec}}},
		{"duplicate capability", func(m *Hello) { m.Capabilities[1].KeySpec = m.Capabilities[0].KeySpec }, errWant{invalid: "capabilities[1].key_spec"}},
		{"unknown capability algorithm", func(m *Hello) {
			m.Capabilities[0].Algorithms = append(m.Capabilities[0].Algorithms, "RSAES_PKCS1_V1_5")
		}, errWant{invalid: "capabilities[0].algorithms[1]"}},
		{"unknown wrapping key spec", func(m *Hello) {
			m.Capabilities[1].WrappingKeySpecs = []keyspec.WrappingKeySpec{"RSA_1024"}
		}, errWant{invalid: "capabilities[1].wrapping_key_specs[0]"}},
		{"identity key not P-256", func(m *Hello) { m.IdentityPublicKey = spkiDER(t, &rsaKey(t, 2048).PublicKey) }, errWant{invalid: "identity_public_key"}},
		{"identity key of another agent", func(m *Hello) { m.IdentityPublicKey = rogueSigner(t).PublicKeyDER() }, errWant{invalid: "identity_public_key"}},
		{"agent_id differs from signer", func(m *Hello) { m.AgentID = "agent-other" }, errWant{invalid: "agent_id"}},
		{"empty pending id", func(m *Hello) { m.Pending = []string{""} }, errWant{missing: "pending[0]"}},
		{"stale hello", func(m *Hello) { m.SentAt = testNow.Add(-MaxHelloAge - testSkew - time.Second) }, errWant{is: []error{ErrExpired}}},
		{"hello from the future", func(m *Hello) { m.SentAt = testNow.Add(testSkew + time.Second) }, errWant{is: []error{ErrNotYetValid}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validHello(t)
			m.Capabilities = append([]Capability(nil), m.Capabilities...)
			tc.edit(&m)
			got, err := OpenHello(mustDecode(t, sealRaw(t, agentSigner(t), agentID, ActionHello, mustJSON(t, m))),
				verifierOf(t, agentSigner(t)), testNow, testSkew)
			if got != nil {
				t.Fatalf("opened %+v", got)
			}
			checkErr(t, err, tc.want)
		})
	}
}

func TestHelloSupports(t *testing.T) {
	h := validHello(t)
	tests := []struct {
		spec keyspec.Spec
		alg  keyspec.WrappingAlgorithm
		wks  keyspec.WrappingKeySpec
		want bool
	}{
		{keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096, true},
		{keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA3072, false}, // size not announced
		{keyspec.SymmetricDefault, keyspec.RSAESOAEPSHA1, keyspec.WrapRSA4096, false},   // algorithm not announced
		{keyspec.RSA2048, keyspec.RSAAESKeyWrapSHA256, keyspec.WrapRSA4096, true},
		{keyspec.HMAC256, keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096, false}, // spec not announced
	}
	for _, tc := range tests {
		if got := h.Supports(tc.spec, tc.alg, tc.wks); got != tc.want {
			t.Errorf("Supports(%s, %s, %s) = %v, want %v", tc.spec, tc.alg, tc.wks, got, tc.want)
		}
	}
	// Announcing an illegal combination does not make it supported.
	h.Capabilities = append(h.Capabilities, Capability{KeySpec: keyspec.HMAC256,
		Algorithms: []keyspec.WrappingAlgorithm{keyspec.RSAAESKeyWrapSHA256}, WrappingKeySpecs: []keyspec.WrappingKeySpec{keyspec.WrapRSA4096}})
	if h.Supports(keyspec.HMAC256, keyspec.RSAAESKeyWrapSHA256, keyspec.WrapRSA4096) {
		t.Error("illegal HMAC + RSA_AES_KEY_WRAP reported as supported")
	}
}
