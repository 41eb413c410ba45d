//go:build cgo

package daemon

import "github.com/keyferry/keyferry/agent/hsm"

// The agent's PKCS#11 layer is what the daemon's narrow interfaces
// describe. It needs cgo, so these assertions build only with it; the
// daemon's other files build without.
var (
	_ HSM      = (*hsm.HSM)(nil)
	_ Identity = (*hsm.IdentityKey)(nil)
)
