//go:build hsmfault && cgo

package hsm

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// The hsmfault build (the soak's keyferry-agent, never a release) injects
// HSM faults into C_WrapKey when KEYFERRY_HSM_FAULTS is set, e.g.
// "device_error=0.05,session_loss=0.05": each wrap fails with
// CKR_DEVICE_ERROR after running in the token, or loses its session first,
// with those probabilities.
func init() {
	spec := os.Getenv("KEYFERRY_HSM_FAULTS")
	if spec == "" {
		return
	}
	var pDev, pLoss float64
	for _, kv := range strings.Split(spec, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			panic(fmt.Sprintf("KEYFERRY_HSM_FAULTS: %q: want a probability in [0,1]", kv))
		}
		switch k {
		case "device_error":
			pDev = p
		case "session_loss":
			pLoss = p
		default:
			panic(fmt.Sprintf("KEYFERRY_HSM_FAULTS: unknown fault %q (device_error, session_loss)", k))
		}
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "hsmfault")
	moduleHook = func(m module) module {
		return &faultModule{module: m, log: log, decide: func() FaultKind {
			switch r := rand.Float64(); {
			case r < pDev:
				return FaultDeviceErrorMidWrap
			case r < pDev+pLoss:
				return FaultSessionLoss
			}
			return ""
		}}
	}
}
