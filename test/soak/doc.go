// Package soak runs the keyferry sandbox under randomly injected faults for
// a bounded time and then audits the invariants of DESIGN.md: every job
// terminal with a reason, no alias on a key without material, every
// generation's KMS material equal to its HSM twin, no orphaned
// PendingImport key, the agent's audit chain intact, the agent reconnected
// after every drop, and no plaintext key material on the websocket or in a
// log. `make soak` (test/cmd/soak) and TestSoakShort drive it.
package soak
