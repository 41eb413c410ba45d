package daemon

import (
	"slices"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Allowed is the part of the agent's local policy that decides what its
// hello advertises: the key specs it may produce (policy.key_specs) and the
// smallest wrapping key it accepts (policy.min_wrapping_key_bits). The
// zero value allows everything the token can do.
type Allowed struct {
	KeySpecs           []keyspec.Spec
	MinWrappingKeyBits int
}

// HelloCapabilities converts the HSM's probed capabilities into the hello
// message's list: specs the token cannot wrap at all, specs the local
// policy does not allow, and wrapping keys below its minimum are left out,
// so the control plane never picks this agent for a request its policy
// would refuse (an agent of a pool advertises exactly what it will do).
func HelloCapabilities(caps []hsm.Capability, allow Allowed) []protocol.Capability {
	var out []protocol.Capability
	for _, c := range caps {
		if allow.KeySpecs != nil && !slices.Contains(allow.KeySpecs, c.KeySpec) {
			continue
		}
		var wks []keyspec.WrappingKeySpec
		for _, w := range c.WrappingKeySpecs {
			if w.Bits() >= allow.MinWrappingKeyBits {
				wks = append(wks, w)
			}
		}
		if len(c.Algorithms) == 0 || len(wks) == 0 {
			continue
		}
		out = append(out, protocol.Capability{KeySpec: c.KeySpec, Algorithms: c.Algorithms, WrappingKeySpecs: wks})
	}
	return out
}
