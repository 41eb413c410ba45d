package hsm

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func TestChooseAlgorithm(t *testing.T) {
	all := keyspec.WrappingKeySpecs()
	caps := []Capability{
		{KeySpec: keyspec.SymmetricDefault, Algorithms: []keyspec.WrappingAlgorithm{keyspec.RSAESOAEPSHA1, keyspec.RSAESOAEPSHA256}, WrappingKeySpecs: all},
		{KeySpec: keyspec.ECCNISTP521, Algorithms: []keyspec.WrappingAlgorithm{keyspec.RSAESOAEPSHA1}, WrappingKeySpecs: []keyspec.WrappingKeySpec{keyspec.WrapRSA2048}},
		{KeySpec: keyspec.RSA2048, Missing: "CKM_AES_KEY_WRAP_PAD"},
	}
	for _, tc := range []struct {
		spec keyspec.Spec
		want keyspec.Combination
		err  bool
	}{
		{keyspec.SymmetricDefault, keyspec.Combination{Algorithm: keyspec.RSAESOAEPSHA256, KeySpec: keyspec.WrapRSA4096}, false},
		{keyspec.ECCNISTP521, keyspec.Combination{}, true}, // OAEP under RSA_2048 is illegal for P-521
		{keyspec.RSA2048, keyspec.Combination{}, true},
		{keyspec.HMAC256, keyspec.Combination{}, true},
	} {
		got, err := ChooseAlgorithm(tc.spec, caps)
		if tc.err {
			if !errors.Is(err, ErrUnsupportedMechanism) {
				t.Errorf("%s: %v, want ErrUnsupportedMechanism", tc.spec, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	table := FormatCapabilities(caps)
	if !strings.Contains(table, "RSAES_OAEP_SHA_256") || !strings.Contains(table, "missing CKM_AES_KEY_WRAP_PAD") {
		t.Fatalf("table lacks rows:\n%s", table)
	}
}
