//go:build hsmfault && cgo

package hsm

// InjectWrapFaultsForTest puts a fault wrapper under the live pool: the
// next C_WrapKey calls get the faults in seq ("" = none), in order, then
// none. restore puts the real module back.
func (h *HSM) InjectWrapFaultsForTest(seq ...FaultKind) (restore func()) {
	return h.swapModuleForTest(func(real module) module {
		return &faultModule{module: real, log: h.log, decide: func() FaultKind {
			if len(seq) == 0 {
				return ""
			}
			k := seq[0]
			seq = seq[1:]
			return k
		}}
	})
}
