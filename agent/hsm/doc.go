// Package hsm is keyferry-agent's layer over a PKCS#11 token (cgo, through
// github.com/miekg/pkcs11): it loads the vendor module, selects and logs in
// to one token, keeps a bounded pool of sessions that survives device loss
// (re-initialising the module without restarting the process), generates
// KMS-importable keys inside the token, wraps them under a KMS wrapping
// public key with the four KMS wrapping algorithms, probes what the token can
// actually do, and exposes the HSM-resident identity key that signs the
// agent's wrap results.
//
// Only the files that use the module (miekg/pkcs11) or the HSM built on it
// need cgo, and they carry the cgo build tag. What the agent's daemon shares
// with this package is plain Go and builds with CGO_ENABLED=0: Key and
// GenerateOption, the capability table (Capability, ChooseAlgorithm,
// FormatCapabilities), the error sentinels and typed errors, Config and its
// validation, and the label scheme.
//
// Security invariant: no code path here asks the token for the value attribute of any object; key
// material leaves the token only as C_WrapKey output. Logs carry labels, key
// specs, algorithms and PKCS#11 return codes, never key bytes or PINs.
package hsm
