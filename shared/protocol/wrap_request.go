package protocol

import (
	"github.com/keyferry/keyferry/shared/names"

	"fmt"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// MaxRequestLifetime caps ExpiresAt - IssuedAt of a WrapRequest.
const MaxRequestLifetime = 15 * time.Minute

// Challenge sizes for HMAC post-import verification.
const (
	MinChallengeBytes = 16
	MaxChallengeBytes = 1024
)

// Operation says which HSM key a WrapRequest wraps.
type Operation string

// Operations.
const (
	// OpGenerate creates a new key in the HSM and wraps it.
	OpGenerate Operation = "generate"
	// OpRewrap wraps the existing HSM key found by HSMLabel (re-import of
	// the same material, e.g. before it expires in KMS).
	OpRewrap Operation = "rewrap"
)

// WrapRequest asks the agent to wrap an HSM key for import into one KMS key.
// It is signed by the control plane's KMS signing key.
type WrapRequest struct {
	RequestID string       `json:"request_id"`
	JobID     string       `json:"job_id"`
	Nonce     Nonce        `json:"nonce"`
	Account   string       `json:"account"`
	Region    string       `json:"region"`
	Group     string       `json:"group"`
	KeyARN    string       `json:"key_arn"`
	KeySpec   keyspec.Spec `json:"key_spec"`
	Operation Operation    `json:"operation"`
	// HSMLabel is the CKA_LABEL of the HSM key (kf/<group>/<generation>):
	// the key to generate, or the existing key to rewrap. Required: the
	// control plane plans the generation, the agent never picks one.
	HSMLabel          string                    `json:"hsm_label,omitempty"`
	WrappingAlgorithm keyspec.WrappingAlgorithm `json:"wrapping_algorithm"`
	WrappingKeySpec   keyspec.WrappingKeySpec   `json:"wrapping_key_spec"`
	// WrappingPublicKey is the DER SPKI from GetParametersForImport.
	WrappingPublicKey []byte `json:"wrapping_public_key"`
	// Challenge (HMAC key specs only) is random bytes the agent MACs with
	// the HSM key and returns as WrapResult.ChallengeMAC.
	Challenge []byte    `json:"challenge,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Action implements message.
func (WrapRequest) Action() Action { return ActionWrapRequest }

func (m WrapRequest) normalized() any {
	m.IssuedAt, m.ExpiresAt = m.IssuedAt.UTC(), m.ExpiresAt.UTC()
	return m
}

func (m WrapRequest) validate() error {
	for _, f := range []struct{ name, val string }{
		{"request_id", m.RequestID}, {"job_id", m.JobID}, {"group", m.Group},
	} {
		if err := checkText(f.name, f.val); err != nil {
			return err
		}
	}
	if err := checkNonce("nonce", m.Nonce); err != nil {
		return err
	}
	if m.Account == "" {
		return missing("account")
	}
	if err := names.CheckAccount(m.Account); err != nil {
		return invalid("account", err.Error())
	}
	if m.Region == "" {
		return missing("region")
	}
	if err := names.CheckRegion(m.Region); err != nil {
		return invalid("region", err.Error())
	}
	arn, err := parseKeyARN("key_arn", m.KeyARN)
	if err != nil {
		return err
	}
	if arn.Account != m.Account || arn.Region != m.Region {
		return invalid("key_arn", fmt.Sprintf("key is in %s/%s but the request names %s/%s", arn.Account, arn.Region, m.Account, m.Region))
	}
	info, err := checkSpec("key_spec", m.KeySpec)
	if err != nil {
		return err
	}
	switch m.Operation {
	case "":
		return missing("operation")
	case OpGenerate, OpRewrap:
		if err := checkText("hsm_label", m.HSMLabel); err != nil {
			return err
		}
	default:
		return invalid("operation", fmt.Sprintf("%q, want %q or %q", string(m.Operation), OpGenerate, OpRewrap))
	}
	if err := checkAlgorithm("wrapping_algorithm", m.WrappingAlgorithm); err != nil {
		return err
	}
	if err := checkWrappingKeySpec("wrapping_key_spec", m.WrappingKeySpec); err != nil {
		return err
	}
	if len(m.WrappingPublicKey) == 0 {
		return missing("wrapping_public_key")
	}
	_, actual, err := wrapping.ParsePublicKey(m.WrappingPublicKey)
	if err != nil {
		return invalidErr("wrapping_public_key", "not an RSA 2048/3072/4096 DER SPKI", err)
	}
	if actual != m.WrappingKeySpec {
		return invalid("wrapping_key_spec", fmt.Sprintf("says %s but wrapping_public_key is %s", m.WrappingKeySpec, actual))
	}
	if err := keyspec.CheckWrapping(m.KeySpec, m.WrappingAlgorithm, actual); err != nil {
		return invalidErr("wrapping_algorithm", "illegal for this key spec and wrapping key", err)
	}
	if len(m.Challenge) > 0 {
		if info.Family != keyspec.FamilyHMAC {
			return invalid("challenge", fmt.Sprintf("only HMAC key specs answer a challenge, not %s", m.KeySpec))
		}
		if len(m.Challenge) < MinChallengeBytes || len(m.Challenge) > MaxChallengeBytes {
			return invalid("challenge", fmt.Sprintf("%d bytes, want %d..%d", len(m.Challenge), MinChallengeBytes, MaxChallengeBytes))
		}
	}
	if err := checkTime("issued_at", m.IssuedAt); err != nil {
		return err
	}
	if err := checkTime("expires_at", m.ExpiresAt); err != nil {
		return err
	}
	if !m.ExpiresAt.After(m.IssuedAt) {
		return invalid("expires_at", "must be after issued_at")
	}
	if life := m.ExpiresAt.Sub(m.IssuedAt); life > MaxRequestLifetime {
		return invalid("expires_at", fmt.Sprintf("lifetime %s exceeds the %s cap", life, MaxRequestLifetime))
	}
	return nil
}

// ClockError is OpenWrapRequest's refusal of a request that is signed and
// well formed but outside its validity window (errors.Is ErrExpired or
// ErrNotYetValid). It names the request and its job, which the signature
// vouches for, so the refusal can reach the job; nothing else of the
// request may be used.
type ClockError struct {
	RequestID, JobID string
	Err              error
}

func (e *ClockError) Error() string { return "wrap_request " + e.RequestID + ": " + e.Err.Error() }
func (e *ClockError) Unwrap() error { return e.Err }

// OpenWrapRequest verifies env's signature with v (the pinned control-plane
// key) first, then decodes and checks the request strictly, then checks
// that it is valid at now within skew. It does not check replay (the agent
// keeps a nonce cache) nor local policy.
func OpenWrapRequest(env *Envelope, v *Verifier, now time.Time, skew time.Duration) (*WrapRequest, error) {
	var m WrapRequest
	if err := open(env, v, ActionWrapRequest, &m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("wrap_request: %w", err)
	}
	if err := checkClock(now, skew, "issued_at", m.IssuedAt, "expires_at", m.ExpiresAt); err != nil {
		return nil, &ClockError{RequestID: m.RequestID, JobID: m.JobID, Err: err}
	}
	m.IssuedAt, m.ExpiresAt = m.IssuedAt.UTC(), m.ExpiresAt.UTC()
	m.Challenge = nilIfEmpty(m.Challenge)
	return &m, nil
}
