// Package protocol is the wire protocol between the keyferry control plane
// (Lambdas behind an API Gateway WebSocket API) and the on-premises agent.
//
// # Envelope
//
// Every message is one JSON envelope, routed by API Gateway on its top-level
// action field (route selection expression $request.body.action):
//
//	{"v":1,"action":"wrap_request","payload":"<base64>","sig":"<base64>","signer":"<id>"}
//
// payload is the standard base64 of the exact payload JSON bytes; the
// signature covers those bytes, never a re-encoding:
//
//	digest = SHA-256("keyferry-v1\x00" || action || "\x00" || payload)
//	sig    = ECDSA P-256 over digest, ASN.1 DER
//
// The action is inside the digest, so a signature for one action never
// verifies as another. DER is what AWS KMS Sign returns for ECDSA_SHA_256
// with MessageType DIGEST; a PKCS#11 CKM_ECDSA signature (raw r||s) is
// converted with RawToDER. signer names the key: the control plane's KMS
// key id, or the agent id for agent-signed messages. Every action is signed
// except heartbeat, where signing is optional.
//
// Decoding is strict at both levels: one JSON object, no unknown, duplicate
// or non-lowercase field names (encoding/json would otherwise match names
// case-insensitively), no trailing data, strict base64. Open* functions
// verify the signature before they parse the payload, then check required
// fields, semantics (key spec, wrapping algorithm and wrapping key size
// legal for KMS), and the clock.
//
// # Sequence
//
//  1. The agent connects (outbound wss, SigV4 on $connect).
//  2. agent -> hello: agent id, HSM pool, identity key, capabilities, and
//     the request ids it still owes results for (after a reconnect).
//  3. control plane -> wrap_request: signed by the control-plane KMS key,
//     valid for at most MaxRequestLifetime, with a fresh nonce.
//  4. agent -> wrap_result (signed by the agent identity, nonce echoed) or
//     error (with a Code). The control plane binds the result to its
//     request with WrapResult.Matches.
//  5. Either side -> heartbeat at least every few minutes, because API
//     Gateway closes a connection after 10 idle minutes; either side may
//     send error at any time.
//
// # Limits
//
// API Gateway allows 128 KiB per message (MaxMessageBytes; Seal refuses
// larger envelopes and Decode rejects them) and 32 KiB per frame
// (MaxFrameBytes; the WebSocket writer must fragment), a 2 h connection
// life and a 29 s integration timeout. Base64 costs a third, so a payload
// can be at most about 96 KiB.
//
// # Replay
//
// Replay protection is the receiver's job: the agent remembers the Nonce of
// every unexpired wrap_request it accepted and refuses a second one
// (EqualNonces compares in constant time). ECDSA signatures are malleable,
// so a replay cache must key on the nonce, never on the signature.
package protocol
