package policy

import (
	"errors"
	"fmt"

	"github.com/keyferry/keyferry/shared/protocol"
)

// Reason is a short, stable refusal label (metrics label, audit reason).
type Reason string

// Refusal reasons.
const (
	ReasonBadRequest      Reason = "bad_request"
	ReasonSignature       Reason = "signature"
	ReasonExpired         Reason = "expired"
	ReasonNotYetValid     Reason = "not_yet_valid"
	ReasonReplay          Reason = "replay"
	ReasonReplayCacheFull Reason = "replay_cache_full"
	ReasonAccount         Reason = "account"
	ReasonRegion          Reason = "region"
	ReasonGroup           Reason = "group"
	ReasonKeySpec         Reason = "key_spec"
	ReasonWrappingKeySize Reason = "wrapping_key_size"
	ReasonRateGroup       Reason = "rate_group"
	ReasonRateGlobal      Reason = "rate_global"
	ReasonKeyPinned       Reason = "key_pinned"
	ReasonUnsupported     Reason = "unsupported"
)

// Refusal is returned for every request the policy refuses.
type Refusal struct {
	Reason Reason
	Code   protocol.ErrorCode
	Msg    string
	Err    error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return fmt.Sprintf("policy: refused (%s): %s: %v", r.Reason, r.Msg, r.Err)
	}
	return fmt.Sprintf("policy: refused (%s): %s", r.Reason, r.Msg)
}

func (r *Refusal) Unwrap() error { return r.Err }

// AsRefusal returns the *Refusal in err's chain, if any.
func AsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

func refuse(reason Reason, code protocol.ErrorCode, err error, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Code: code, Msg: fmt.Sprintf(format, args...), Err: err}
}

// fromProtocol classifies an Open/Decode error.
func fromProtocol(err error) *Refusal {
	switch {
	case errors.Is(err, protocol.ErrBadSignature):
		return refuse(ReasonSignature, protocol.CodeSignatureInvalid, err, "control-plane signature does not verify")
	case errors.Is(err, protocol.ErrExpired):
		return refuse(ReasonExpired, protocol.CodeExpired, err, "request expired")
	case errors.Is(err, protocol.ErrNotYetValid):
		return refuse(ReasonNotYetValid, protocol.CodeExpired, err, "request issued in the future")
	}
	code := protocol.CodeFor(err)
	if code == protocol.CodeUnsupported {
		return refuse(ReasonUnsupported, code, err, "unsupported request")
	}
	return refuse(ReasonBadRequest, protocol.CodeBadRequest, err, "malformed request")
}
