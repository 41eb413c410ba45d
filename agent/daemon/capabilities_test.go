package daemon

import (
	"reflect"
	"testing"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// TestHelloAdvertisesOnlyWhatThePolicyAllows: the hello's capabilities are
// the token's, less the specs policy.key_specs leaves out and the wrapping
// keys below policy.min_wrapping_key_bits, so the control plane never sends
// this agent a request its own policy would refuse.
func TestHelloAdvertisesOnlyWhatThePolicyAllows(t *testing.T) {
	all := []keyspec.WrappingKeySpec{keyspec.WrapRSA2048, keyspec.WrapRSA3072, keyspec.WrapRSA4096}
	oaep := []keyspec.WrappingAlgorithm{keyspec.RSAESOAEPSHA256}
	caps := []hsm.Capability{
		{KeySpec: keyspec.SymmetricDefault, Algorithms: oaep, WrappingKeySpecs: all},
		{KeySpec: keyspec.HMAC256, Algorithms: oaep, WrappingKeySpecs: all},
		{KeySpec: keyspec.ECCNISTP256, Algorithms: nil, WrappingKeySpecs: all, Missing: "CKM_RSA_AES_KEY_WRAP"},
	}
	for _, tc := range []struct {
		name  string
		allow Allowed
		want  []protocol.Capability
	}{
		{"everything the token can do", Allowed{}, []protocol.Capability{
			{KeySpec: keyspec.SymmetricDefault, Algorithms: oaep, WrappingKeySpecs: all},
			{KeySpec: keyspec.HMAC256, Algorithms: oaep, WrappingKeySpecs: all}}},
		{"key_specs limits the specs", Allowed{KeySpecs: []keyspec.Spec{keyspec.HMAC256, keyspec.ECCNISTP256}}, []protocol.Capability{
			{KeySpec: keyspec.HMAC256, Algorithms: oaep, WrappingKeySpecs: all}}},
		{"min_wrapping_key_bits drops small wrapping keys", Allowed{MinWrappingKeyBits: 3072}, []protocol.Capability{
			{KeySpec: keyspec.SymmetricDefault, Algorithms: oaep, WrappingKeySpecs: all[1:]},
			{KeySpec: keyspec.HMAC256, Algorithms: oaep, WrappingKeySpecs: all[1:]}}},
		{"nothing left", Allowed{MinWrappingKeyBits: 8192}, nil},
		{"explicit empty key_specs allows none", Allowed{KeySpecs: []keyspec.Spec{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HelloCapabilities(caps, tc.allow); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
