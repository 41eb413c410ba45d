package hsm

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// The capability table: what a probe found (HSM.Capabilities, cgo) as
// plain data, the choice of algorithm from it and its rendering. This file
// compiles without cgo, so the daemon can turn a table into its hello.

// Capability is what the token can do for one key spec: generate it and
// wrap it with Algorithms under wrapping keys of WrappingKeySpecs. Only
// combinations that keyspec.CheckWrapping allows are listed.
type Capability struct {
	KeySpec          keyspec.Spec
	Algorithms       []keyspec.WrappingAlgorithm
	WrappingKeySpecs []keyspec.WrappingKeySpec
	// Mechanisms says how each algorithm runs ("CKM_RSA_PKCS_OAEP",
	// "CKM_RSA_AES_KEY_WRAP", "two-step"), or why it does not
	// (e.g. "CKM_RSA_PKCS_OAEP: CKR_ARGUMENTS_BAD").
	Mechanisms map[keyspec.WrappingAlgorithm]string
	// Missing names the mechanism that rules the spec out entirely, if any.
	Missing string
}

// Supports reports whether alg is a supported algorithm of the capability.
func (c Capability) Supports(alg keyspec.WrappingAlgorithm) bool {
	return slices.Contains(c.Algorithms, alg)
}

// ChooseAlgorithm picks the strongest supported legal combination for spec
// ("auto"): algorithms in keyspec.WrappingAlgorithms() order, then the
// largest wrapping key spec.
func ChooseAlgorithm(spec keyspec.Spec, caps []Capability) (keyspec.Combination, error) {
	for _, c := range caps {
		if c.KeySpec != spec {
			continue
		}
		for _, alg := range keyspec.WrappingAlgorithms() {
			if !c.Supports(alg) {
				continue
			}
			for _, w := range c.WrappingKeySpecs {
				if keyspec.CheckWrapping(spec, alg, w) == nil {
					return keyspec.Combination{Algorithm: alg, KeySpec: w}, nil
				}
			}
		}
		return keyspec.Combination{}, &UnsupportedError{Spec: string(spec), Mechanism: "any wrapping mechanism", Reason: "no supported legal wrapping algorithm (" + c.Missing + ")"}
	}
	return keyspec.Combination{}, &UnsupportedError{Spec: string(spec), Mechanism: "any wrapping mechanism", Reason: "spec not in the capability table"}
}

// FormatCapabilities renders caps as a printable table.
func FormatCapabilities(caps []Capability) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY SPEC\tALGORITHMS\tWRAPPING KEYS\tNOTES")
	for _, c := range caps {
		algs := make([]string, len(c.Algorithms))
		for i, a := range c.Algorithms {
			algs[i] = fmt.Sprintf("%s(%s)", a, c.Mechanisms[a])
		}
		wks := make([]string, len(c.WrappingKeySpecs))
		for i, w := range c.WrappingKeySpecs {
			wks[i] = string(w)
		}
		var notes []string
		if c.Missing != "" {
			notes = append(notes, "missing "+c.Missing)
		}
		for _, a := range keyspec.WrappingAlgorithms() {
			if !c.Supports(a) && c.Mechanisms[a] != "" {
				notes = append(notes, fmt.Sprintf("%s: %s", a, c.Mechanisms[a]))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.KeySpec, dash(strings.Join(algs, " ")), dash(strings.Join(wks, " ")), dash(strings.Join(notes, "; ")))
	}
	_ = tw.Flush()
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
