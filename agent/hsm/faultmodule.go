//go:build hsmfault && cgo

package hsm

import (
	"log/slog"
	"sync"

	"github.com/miekg/pkcs11"
)

// FaultKind names an injected HSM fault (the "kind" of the log line
// "hsm fault injected").
type FaultKind string

const (
	// FaultDeviceErrorMidWrap: C_WrapKey runs in the token, then the call
	// answers CKR_DEVICE_ERROR (the device failed before the answer).
	FaultDeviceErrorMidWrap FaultKind = "hsm_device_error_mid_wrap"
	// FaultSessionLoss: the session is really closed under the caller just
	// before C_WrapKey, which the token then refuses
	// (CKR_SESSION_HANDLE_INVALID).
	FaultSessionLoss FaultKind = "hsm_session_loss"
)

// faultModule stands between the pool and the real module and injects
// faults into C_WrapKey as decide says. It exists only in builds with the
// hsmfault tag: the soak's agent binary (installed through moduleHook,
// driven by KEYFERRY_HSM_FAULTS) and this package's tests (make test passes
// the tag); a release agent does not carry it (TestReleaseAgentCarriesNoFaultModule).
type faultModule struct {
	module
	mu     sync.Mutex
	decide func() FaultKind // "" = no fault
	log    *slog.Logger
}

func (f *faultModule) unwrap() module { return f.module }

func (f *faultModule) WrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, wrappingkey, key pkcs11.ObjectHandle) ([]byte, error) {
	f.mu.Lock()
	kind := f.decide()
	f.mu.Unlock()
	switch kind {
	case FaultDeviceErrorMidWrap:
		_, _ = f.module.WrapKey(sh, m, wrappingkey, key)
		f.log.Warn("hsm fault injected", "kind", string(kind))
		return nil, pkcs11.Error(pkcs11.CKR_DEVICE_ERROR)
	case FaultSessionLoss:
		_ = f.module.CloseSession(sh)
		f.log.Warn("hsm fault injected", "kind", string(kind))
	}
	return f.module.WrapKey(sh, m, wrappingkey, key)
}
