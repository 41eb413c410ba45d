// Package security is keyferry's adversarial suite against the running
// sandbox: refused $connect attempts, forged, expired, replayed, wrong-key
// and policy-violating wrap_requests sent to the real agent process, and
// wrap_results from identities that are not registered. Each test checks
// the refusal and that no state changed (no connection record, no HSM
// object, no job change).
package security
