package protocol

import (
	"fmt"
	"slices"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// minWrappedBytes is the smallest possible blob: one RSA-2048 block.
const minWrappedBytes = 256

// WrapResult carries the wrapped key material back to the control plane.
// It is signed by the agent identity key; AgentID equals the envelope signer.
type WrapResult struct {
	RequestID string       `json:"request_id"`
	JobID     string       `json:"job_id"`
	Nonce     Nonce        `json:"nonce"`
	AgentID   string       `json:"agent_id"`
	KeyARN    string       `json:"key_arn"`
	HSMLabel  string       `json:"hsm_label"`
	HSMKeyID  string       `json:"hsm_key_id"` // CKA_ID, lowercase hex
	KeySpec   keyspec.Spec `json:"key_spec"`
	// WrappingAlgorithm is the algorithm WrappedMaterial was made with.
	WrappingAlgorithm keyspec.WrappingAlgorithm `json:"wrapping_algorithm"`
	// WrappedMaterial is the EncryptedKeyMaterial for ImportKeyMaterial.
	WrappedMaterial []byte `json:"wrapped_material"`
	// PublicKey is the DER SPKI of the HSM key pair (asymmetric specs only).
	PublicKey []byte `json:"public_key,omitempty"`
	// ChallengeMAC is HMAC(key, request challenge) (HMAC specs only).
	ChallengeMAC []byte    `json:"challenge_mac,omitempty"`
	CompletedAt  time.Time `json:"completed_at"`
}

// Action implements message.
func (WrapResult) Action() Action { return ActionWrapResult }

func (m WrapResult) normalized() any {
	m.CompletedAt = m.CompletedAt.UTC()
	return m
}

func (m WrapResult) validate() error {
	for _, f := range []struct{ name, val string }{
		{"request_id", m.RequestID}, {"job_id", m.JobID}, {"hsm_label", m.HSMLabel},
	} {
		if err := checkText(f.name, f.val); err != nil {
			return err
		}
	}
	if err := checkNonce("nonce", m.Nonce); err != nil {
		return err
	}
	if m.AgentID == "" {
		return missing("agent_id")
	}
	if err := checkSignerID(m.AgentID); err != nil {
		return invalidErr("agent_id", "must be usable as an envelope signer id", err)
	}
	if _, err := parseKeyARN("key_arn", m.KeyARN); err != nil {
		return err
	}
	if err := checkHexID("hsm_key_id", m.HSMKeyID); err != nil {
		return err
	}
	info, err := checkSpec("key_spec", m.KeySpec)
	if err != nil {
		return err
	}
	if err := checkAlgorithm("wrapping_algorithm", m.WrappingAlgorithm); err != nil {
		return err
	}
	legal := slices.ContainsFunc(keyspec.Legal(m.KeySpec), func(c keyspec.Combination) bool {
		return c.Algorithm == m.WrappingAlgorithm
	})
	if !legal {
		return invalidErr("wrapping_algorithm", "illegal for this key spec",
			keyspec.CheckWrapping(m.KeySpec, m.WrappingAlgorithm, keyspec.WrapRSA4096))
	}
	if len(m.WrappedMaterial) == 0 {
		return missing("wrapped_material")
	}
	if len(m.WrappedMaterial) < minWrappedBytes {
		return invalid("wrapped_material", fmt.Sprintf("%d bytes, shorter than one RSA-2048 block", len(m.WrappedMaterial)))
	}
	if info.Asymmetric() {
		if len(m.PublicKey) == 0 {
			return missing("public_key")
		}
		if err := checkPublicKeyForSpec("public_key", m.PublicKey, info); err != nil {
			return err
		}
	} else if len(m.PublicKey) > 0 {
		return invalid("public_key", fmt.Sprintf("%s keys have no public key", m.KeySpec))
	}
	if len(m.ChallengeMAC) > 0 {
		if info.Family != keyspec.FamilyHMAC {
			return invalid("challenge_mac", fmt.Sprintf("only HMAC key specs answer a challenge, not %s", m.KeySpec))
		}
		if len(m.ChallengeMAC) != info.Bits/8 {
			return invalid("challenge_mac", fmt.Sprintf("%d bytes, want %d for %s", len(m.ChallengeMAC), info.Bits/8, m.KeySpec))
		}
	}
	return checkTime("completed_at", m.CompletedAt)
}

// OpenWrapResult verifies env's signature with v (the registered identity
// key of the agent named by env.Signer) first, then decodes and checks the
// result strictly: AgentID must equal the envelope signer, and CompletedAt
// must not lie in the future beyond skew. Results have no expiry (an agent
// re-sends owed results after a reconnect); bind a result to its request
// with Matches.
func OpenWrapResult(env *Envelope, v *Verifier, now time.Time, skew time.Duration) (*WrapResult, error) {
	var m WrapResult
	if err := open(env, v, ActionWrapResult, &m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("wrap_result: %w", err)
	}
	if m.AgentID != env.Signer {
		return nil, fmt.Errorf("wrap_result: %w", invalid("agent_id", fmt.Sprintf("%q differs from the envelope signer %q", m.AgentID, env.Signer)))
	}
	if err := checkClock(now, skew, "completed_at", m.CompletedAt, "", time.Time{}); err != nil {
		return nil, fmt.Errorf("wrap_result %s: %w", m.RequestID, err)
	}
	m.CompletedAt = m.CompletedAt.UTC()
	m.PublicKey, m.ChallengeMAC = nilIfEmpty(m.PublicKey), nilIfEmpty(m.ChallengeMAC)
	return &m, nil
}

// Matches checks that the result answers req: same request, job, nonce
// (constant time), key ARN, key spec and wrapping algorithm; the HSM label
// of a rewrap; a challenge MAC exactly when req had a challenge; and a
// wrapped blob whose size fits req's wrapping key. The error is an
// *InvalidFieldError or *MissingFieldError naming the result field.
func (m *WrapResult) Matches(req *WrapRequest) error {
	switch {
	case m.RequestID != req.RequestID:
		return invalid("request_id", fmt.Sprintf("%q answers another request than %q", m.RequestID, req.RequestID))
	case m.JobID != req.JobID:
		return invalid("job_id", fmt.Sprintf("%q, request is for job %q", m.JobID, req.JobID))
	case !EqualNonces(m.Nonce, req.Nonce):
		return invalid("nonce", "does not echo the request nonce")
	case m.KeyARN != req.KeyARN:
		return invalid("key_arn", fmt.Sprintf("%q, request is for %q", m.KeyARN, req.KeyARN))
	case m.KeySpec != req.KeySpec:
		return invalid("key_spec", fmt.Sprintf("%s, request is for %s", m.KeySpec, req.KeySpec))
	case m.WrappingAlgorithm != req.WrappingAlgorithm:
		return invalid("wrapping_algorithm", fmt.Sprintf("%s, request asked for %s", m.WrappingAlgorithm, req.WrappingAlgorithm))
	case req.Operation == OpRewrap && m.HSMLabel != req.HSMLabel:
		return invalid("hsm_label", fmt.Sprintf("%q, rewrap asked for %q", m.HSMLabel, req.HSMLabel))
	case len(req.Challenge) > 0 && len(m.ChallengeMAC) == 0:
		return missing("challenge_mac")
	case len(req.Challenge) == 0 && len(m.ChallengeMAC) > 0:
		return invalid("challenge_mac", "present but the request had no challenge")
	}
	pub, _, err := wrapping.ParsePublicKey(req.WrappingPublicKey)
	if err != nil {
		return fmt.Errorf("protocol: request wrapping key: %w", err)
	}
	k, n := pub.Size(), len(m.WrappedMaterial)
	if req.WrappingAlgorithm.Hybrid() {
		if n < k+16 || (n-k)%8 != 0 {
			return invalid("wrapped_material", fmt.Sprintf("%d bytes is not one %d-byte RSA block plus an RFC 5649 wrap", n, k))
		}
	} else if n != k {
		return invalid("wrapped_material", fmt.Sprintf("%d bytes, want one %d-byte RSA block", n, k))
	}
	return nil
}
