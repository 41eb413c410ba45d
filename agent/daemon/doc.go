// Package daemon wires the agent together: inbound messages from the tunnel
// go through the policy (before any HSM call), accepted wrap requests run in
// parallel up to the HSM session pool size, results are signed by the
// agent's HSM identity key and queued on the tunnel (surviving reconnects),
// and every request, decision and result is written to the audit log and
// counted in the metrics. Key material never reaches a log, the audit log
// or the wire: only wrapped blobs cross the wire.
//
// The daemon reaches the token only through its HSM and Identity interfaces
// and builds and tests without cgo (TestDaemonBuildsWithoutCgo); the tests
// that drive a real SoftHSM2 token through agent/hsm need cgo and carry its
// build tag.
package daemon
