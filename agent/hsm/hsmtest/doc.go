// Package hsmtest makes fresh PKCS#11 test tokens (SoftHSM2 and the
// opencryptoki soft token) and returns hsm.Configs for them. The agent
// daemon, control-plane and end-to-end suites and the sandbox reuse it.
package hsmtest
