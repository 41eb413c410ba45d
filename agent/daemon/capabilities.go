package daemon

import (
	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/shared/protocol"
)

// HelloCapabilities converts the HSM's probed capabilities into the hello
// message's list (specs the token cannot wrap at all are left out).
func HelloCapabilities(caps []hsm.Capability) []protocol.Capability {
	var out []protocol.Capability
	for _, c := range caps {
		if len(c.Algorithms) == 0 || len(c.WrappingKeySpecs) == 0 {
			continue
		}
		out = append(out, protocol.Capability{KeySpec: c.KeySpec, Algorithms: c.Algorithms, WrappingKeySpecs: c.WrappingKeySpecs})
	}
	return out
}
