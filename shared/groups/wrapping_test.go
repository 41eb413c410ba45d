package groups

import (
	"errors"
	"testing"

	"github.com/keyferry/keyferry/shared/keyspec"
)

func TestWrappingChoices(t *testing.T) {
	c := func(a keyspec.WrappingAlgorithm, w keyspec.WrappingKeySpec) keyspec.Combination {
		return keyspec.Combination{Algorithm: a, KeySpec: w}
	}
	var everything []keyspec.Combination
	for _, w := range keyspec.WrappingKeySpecs() {
		for _, a := range keyspec.WrappingAlgorithms() {
			everything = append(everything, c(a, w))
		}
	}
	auto := Wrapping{Algorithm: AutoAlgorithm, KeySpec: AutoKeySpec}
	cases := []struct {
		name    string
		spec    keyspec.Spec
		w       Wrapping
		caps    []keyspec.Combination
		want    keyspec.Combination
		wantErr bool
	}{
		{name: "symmetric auto all caps", spec: keyspec.SymmetricDefault, w: auto, caps: everything, want: c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096)},
		{name: "rsa auto all caps", spec: keyspec.RSA2048, w: auto, caps: everything, want: c(keyspec.RSAAESKeyWrapSHA256, keyspec.WrapRSA4096)},
		{name: "ecc auto all caps", spec: keyspec.ECCNISTP256, w: auto, caps: everything, want: c(keyspec.RSAAESKeyWrapSHA256, keyspec.WrapRSA4096)},
		{name: "key size before algorithm", spec: keyspec.ECCNISTP256, w: auto,
			caps: []keyspec.Combination{c(keyspec.RSAAESKeyWrapSHA256, keyspec.WrapRSA2048), c(keyspec.RSAESOAEPSHA1, keyspec.WrapRSA4096)},
			want: c(keyspec.RSAESOAEPSHA1, keyspec.WrapRSA4096)},
		{name: "algorithm order within a size", spec: keyspec.ECCNISTP384, w: auto,
			caps: []keyspec.Combination{c(keyspec.RSAESOAEPSHA1, keyspec.WrapRSA3072), c(keyspec.RSAAESKeyWrapSHA1, keyspec.WrapRSA3072), c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA3072)},
			want: c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA3072)},
		{name: "agent without SHA-256 HSM mechanism", spec: keyspec.HMAC256, w: auto,
			caps: []keyspec.Combination{c(keyspec.RSAESOAEPSHA1, keyspec.WrapRSA2048), c(keyspec.RSAESOAEPSHA1, keyspec.WrapRSA4096)},
			want: c(keyspec.RSAESOAEPSHA1, keyspec.WrapRSA4096)},
		{name: "illegal caps skipped", spec: keyspec.ECCNISTP521, w: auto,
			caps: []keyspec.Combination{c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048), c(keyspec.RSAAESKeyWrapSHA1, keyspec.WrapRSA2048)},
			want: c(keyspec.RSAAESKeyWrapSHA1, keyspec.WrapRSA2048)},
		{name: "pinned algorithm", spec: keyspec.ECCNISTP256, w: Wrapping{Algorithm: keyspec.RSAESOAEPSHA256, KeySpec: AutoKeySpec}, caps: everything,
			want: c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096)},
		{name: "pinned key spec", spec: keyspec.SymmetricDefault, w: Wrapping{Algorithm: AutoAlgorithm, KeySpec: keyspec.WrapRSA2048}, caps: everything,
			want: c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA2048)},
		{name: "both pinned, agent lacks it", spec: keyspec.SymmetricDefault, w: Wrapping{Algorithm: keyspec.RSAESOAEPSHA256, KeySpec: keyspec.WrapRSA3072},
			caps: []keyspec.Combination{c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096)}, wantErr: true},
		{name: "rsa key with OAEP-only agent", spec: keyspec.RSA4096, w: auto,
			caps: []keyspec.Combination{c(keyspec.RSAESOAEPSHA256, keyspec.WrapRSA4096)}, wantErr: true},
		{name: "no caps", spec: keyspec.SymmetricDefault, w: auto, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &Group{Name: "g", KeySpec: tc.spec, Wrapping: tc.w}
			got, err := g.WrappingChoices(tc.caps)
			if tc.wantErr {
				if !errors.Is(err, ErrNoWrappingChoice) {
					t.Fatalf("want ErrNoWrappingChoice, got %v, %v", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			if keyspec.CheckWrapping(tc.spec, got.Algorithm, got.KeySpec) != nil {
				t.Fatalf("chose an illegal combination %v", got)
			}
		})
	}
}

// Every spec accepts "auto" for both fields: validation never reports an
// auto/auto group, and WrappingChoices finds keyspec.Legal's first entry
// among the combinations of the preferred (largest) key size.
func TestWrappingAutoLegalForEverySpec(t *testing.T) {
	for _, spec := range keyspec.All() {
		g := &Group{Name: "g", KeySpec: spec, Wrapping: Wrapping{Algorithm: AutoAlgorithm, KeySpec: AutoKeySpec}}
		got, err := g.WrappingChoices(keyspec.Legal(spec))
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if got.KeySpec != keyspec.WrapRSA4096 {
			t.Fatalf("%s: chose %v, want an RSA_4096 combination", spec, got)
		}
		p := &problems{}
		checkWrapping(p, "w", g.Wrapping, spec, true)
		if len(p.list) != 0 {
			t.Fatalf("%s: %v", spec, p.list)
		}
	}
}
