// Package policy decides, before any HSM call, whether the agent may act on
// a wrap request: control-plane signature against the pinned public key,
// expiry with a clock-skew allowance, nonce replay cache, allowed accounts /
// regions / groups / key specs, minimum wrapping-key size, per-group and
// global rate limits, and key pinning (an HSM key once wrapped for one KMS
// key ARN is never wrapped for another; the pins persist in a state file).
// Every refusal is a *Refusal carrying a protocol error code and a reason
// label for metrics and the audit log.
package policy
