package groups

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// ErrNoWrappingChoice is returned (wrapped) by WrappingChoices when no
// combination the agent offers is legal for the group and matches its
// wrapping settings.
var ErrNoWrappingChoice = errors.New("groups: no usable wrapping combination")

// AutoAlgorithm and AutoKeySpec are the "auto" values of the wrapping fields.
const (
	AutoAlgorithm keyspec.WrappingAlgorithm = Auto
	AutoKeySpec   keyspec.WrappingKeySpec   = Auto
)

// allows reports whether the group's wrapping settings admit c (legality for
// the key spec aside).
func (w Wrapping) allows(c keyspec.Combination) bool {
	return (w.Algorithm == AutoAlgorithm || w.Algorithm == c.Algorithm) &&
		(w.KeySpec == AutoKeySpec || w.KeySpec == c.KeySpec)
}

// candidates lists the legal combinations for spec that w admits, in
// preference order.
func (w Wrapping) candidates(spec keyspec.Spec) []keyspec.Combination {
	var out []keyspec.Combination
	for _, c := range preferenceOrder() {
		if w.allows(c) && keyspec.CheckWrapping(spec, c.Algorithm, c.KeySpec) == nil {
			out = append(out, c)
		}
	}
	return out
}

// preferenceOrder is every combination, strongest first: the largest wrapping
// key first, then the algorithms in keyspec.WrappingAlgorithms() order.
func preferenceOrder() []keyspec.Combination {
	var out []keyspec.Combination
	for _, ks := range keyspec.WrappingKeySpecs() {
		for _, a := range keyspec.WrappingAlgorithms() {
			out = append(out, keyspec.Combination{Algorithm: a, KeySpec: ks})
		}
	}
	return out
}

// WrappingChoices picks the strongest combination among caps (what the agent
// can do) that KMS accepts for the group's key spec and that the group's
// wrapping settings allow. Preference: RSA_4096 over RSA_3072 over RSA_2048,
// then RSA_AES_KEY_WRAP_SHA_256 > RSAES_OAEP_SHA_256 > RSA_AES_KEY_WRAP_SHA_1 >
// RSAES_OAEP_SHA_1. The error wraps ErrNoWrappingChoice.
func (g *Group) WrappingChoices(caps []keyspec.Combination) (keyspec.Combination, error) {
	for _, c := range g.Wrapping.candidates(g.KeySpec) {
		if slices.Contains(caps, c) {
			return c, nil
		}
	}
	offered := make([]string, len(caps))
	for i, c := range caps {
		offered[i] = string(c.Algorithm) + "/" + string(c.KeySpec)
	}
	return keyspec.Combination{}, fmt.Errorf("%w for group %s (%s, wrapping %s/%s); agent offers [%s]",
		ErrNoWrappingChoice, g.Name, g.KeySpec, g.Wrapping.Algorithm, g.Wrapping.KeySpec, strings.Join(offered, " "))
}

// checkWrapping validates the wrapping settings of a group with key spec spec.
func checkWrapping(p *problems, path string, w Wrapping, spec keyspec.Spec, specOK bool) {
	algOK, ksOK := true, true
	if w.Algorithm != AutoAlgorithm && !w.Algorithm.Valid() {
		algOK = false
		msg := fmt.Sprintf("%q is not auto or one of %v", w.Algorithm, keyspec.WrappingAlgorithms())
		if w.Algorithm == keyspec.RSAESPKCS1V15Rejected {
			msg = "RSAES_PKCS1_V1_5 is no longer accepted by KMS; use auto or one of " + fmt.Sprint(keyspec.WrappingAlgorithms())
		}
		p.addf(path+".algorithm", "%s", msg)
	}
	if w.KeySpec != AutoKeySpec && w.KeySpec.Bits() == 0 {
		ksOK = false
		p.addf(path+".key_spec", "%q is not auto or one of %v", w.KeySpec, keyspec.WrappingKeySpecs())
	}
	if !algOK || !ksOK || !specOK {
		return
	}
	if w.Algorithm != AutoAlgorithm && w.KeySpec != AutoKeySpec {
		if err := keyspec.CheckWrapping(spec, w.Algorithm, w.KeySpec); err != nil {
			p.addf(path, "%s", strings.TrimPrefix(err.Error(), "keyspec: "))
		}
		return
	}
	if len(w.candidates(spec)) == 0 {
		p.addf(path, "no legal wrapping for %s with algorithm %s and key_spec %s (legal: %v)", spec, w.Algorithm, w.KeySpec, keyspec.Legal(spec))
	}
}
