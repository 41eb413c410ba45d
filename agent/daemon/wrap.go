package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/policy"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// process runs one accepted request: wait for an HSM slot, generate or
// find the key, claim the label->ARN pin, wrap, sign, queue the result.
func (d *Daemon) process(req *protocol.WrapRequest) {
	ctx := d.base
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		d.fail(ctx, req, protocol.CodeInternal, "agent stopped before the wrap started", ctx.Err())
		return
	}
	defer func() { <-d.sem }()
	start := time.Now()
	res, err := d.wrap(ctx, req)
	d.cfg.Metrics.ObserveWrap(time.Since(start))
	if err != nil {
		if r, ok := policy.AsRefusal(err); ok {
			d.refuse(ctx, req, r)
			return
		}
		d.cfg.Metrics.HSMError()
		d.fail(ctx, req, failureCode(err), "wrap failed", err)
		return
	}
	sealed, err := protocol.Seal(ctx, d.cfg.Identity, d.cfg.AgentID, protocol.ActionWrapResult, res)
	if err != nil {
		d.fail(ctx, req, protocol.CodeInternal, "seal result", err)
		return
	}
	sum := sha256.Sum256(res.WrappedMaterial)
	fields := map[string]string{"wrapped_sha256": hex.EncodeToString(sum[:]), "hsm_key_id": res.HSMKeyID,
		"wrapped_bytes": fmt.Sprint(len(res.WrappedMaterial)), "duration_ms": fmt.Sprint(time.Since(start).Milliseconds())}
	reqForAudit := *req
	reqForAudit.HSMLabel = res.HSMLabel
	if err := d.auditReq(ctx, audit.EventResult, "succeeded", "", "", &reqForAudit, fields); err != nil {
		// Invariant 4: no wrap result leaves the agent without its audit
		// record on disk. The wrapped blob is dropped; the control plane
		// gets an error and may ask again.
		d.fail(ctx, req, protocol.CodeInternal, "audit write failed; wrap result withheld", err)
		return
	}
	if err := d.send(sealed); err != nil {
		d.log.Error("could not queue wrap result", "request_id", req.RequestID, "err", err)
		return
	}
	d.cfg.Metrics.Request("succeeded")
	d.log.Info("wrap result queued", "request_id", req.RequestID, "hsm_label", res.HSMLabel,
		"wrapped_sha256", fields["wrapped_sha256"], "duration_ms", fields["duration_ms"])
}

// failureCode is the protocol code of a failed wrap: unsupported for what
// the token (or the key-spec table) cannot do, bad_request for a key that
// is not on the token, hsm_error for anything else.
func failureCode(err error) protocol.ErrorCode {
	switch {
	case errors.Is(err, hsm.ErrUnsupportedMechanism), errors.Is(err, keyspec.ErrUnknownSpec):
		return protocol.CodeUnsupported
	case errors.Is(err, hsm.ErrKeyNotFound):
		return protocol.CodeBadRequest
	}
	return protocol.CodeHSMError
}

func (d *Daemon) fail(ctx context.Context, req *protocol.WrapRequest, code protocol.ErrorCode, what string, err error) {
	d.cfg.Metrics.Request("failed")
	msg := what
	if err != nil {
		msg = what + ": " + err.Error()
	}
	_ = d.auditReq(ctx, audit.EventResult, "failed", string(code), msg, req, nil) // logged; the error goes out regardless
	d.log.Error("wrap request failed", "request_id", req.RequestID, "code", code, "err", msg)
	d.sendError(ctx, protocol.Error{RequestID: req.RequestID, JobID: req.JobID, AgentID: d.cfg.AgentID, Code: code,
		Message: truncate(msg, protocol.MaxErrorMessageBytes)})
}

func (d *Daemon) wrap(ctx context.Context, req *protocol.WrapRequest) (*protocol.WrapResult, error) {
	pins := d.cfg.Policy.Pins()
	var key *hsm.Key
	switch req.Operation {
	case protocol.OpGenerate:
		k, err := d.generate(ctx, req, pins)
		if err != nil {
			return nil, err
		}
		key = k
	case protocol.OpRewrap:
		k, err := d.cfg.HSM.Find(ctx, req.HSMLabel)
		if err != nil {
			return nil, fmt.Errorf("find %q: %w", req.HSMLabel, err)
		}
		if k.Spec != req.KeySpec {
			return nil, &policy.Refusal{Reason: policy.ReasonKeySpec, Code: protocol.CodePolicyRefused,
				Msg: fmt.Sprintf("HSM key %q is %s, request says %s", req.HSMLabel, k.Spec, req.KeySpec)}
		}
		if pins != nil {
			isNew, err := pins.Claim(k.Label, req.KeyARN)
			if err != nil {
				return nil, err
			}
			if isNew {
				if err := d.auditReq(ctx, audit.EventPinAdded, "", "", "", req, nil); err != nil {
					return nil, err
				}
			}
		}
		key = k
	default:
		return nil, fmt.Errorf("unknown operation %q", req.Operation)
	}
	blob, err := d.cfg.HSM.Wrap(ctx, key.Label, req.WrappingPublicKey, req.WrappingAlgorithm)
	if err != nil {
		return nil, fmt.Errorf("wrap %q: %w", key.Label, err)
	}
	res := &protocol.WrapResult{
		RequestID: req.RequestID, JobID: req.JobID, Nonce: req.Nonce, AgentID: d.cfg.AgentID, KeyARN: req.KeyARN,
		HSMLabel: key.Label, HSMKeyID: hex.EncodeToString(key.ID), KeySpec: key.Spec,
		WrappingAlgorithm: req.WrappingAlgorithm, WrappedMaterial: blob, CompletedAt: d.cfg.Now().UTC(),
	}
	info, err := keyspec.Lookup(key.Spec)
	if err != nil {
		return nil, err
	}
	if info.Asymmetric() {
		if res.PublicKey, err = d.cfg.HSM.PublicKeyDER(ctx, key.Label); err != nil {
			return nil, fmt.Errorf("public key of %q: %w", key.Label, err)
		}
	}
	if info.Family == keyspec.FamilyHMAC && len(req.Challenge) > 0 {
		if res.ChallengeMAC, err = d.cfg.HSM.HMAC(ctx, key.Label, req.Challenge); err != nil {
			return nil, fmt.Errorf("challenge MAC with %q: %w", key.Label, err)
		}
	}
	return res, nil
}

// generate pins the request's label (the generation the control plane
// planned) to the request's key ARN and creates the key. A
// key of that label already on the token is wrapped again, never made
// twice: a retry for the same ARN whose result was lost, or a request
// handed over from another agent of the pool (groups.HSMPool: the pool's
// agents share the key store), which created the key before it died. The
// existing key must be of the requested spec.
func (d *Daemon) generate(ctx context.Context, req *protocol.WrapRequest, pins *policy.PinStore) (*hsm.Key, error) {
	d.genMu.Lock() // label choice + pin + create are one step per agent
	defer d.genMu.Unlock()
	label := req.HSMLabel // required by protocol.WrapRequest.Validate
	if _, _, err := hsm.ParseLabel(label); err != nil {
		return nil, &policy.Refusal{Reason: policy.ReasonBadRequest, Code: protocol.CodeBadRequest, Msg: "hsm_label does not follow kf/<group>/<generation>", Err: err}
	}
	isNew := true
	if pins != nil {
		var err error
		if isNew, err = pins.Claim(label, req.KeyARN); err != nil {
			return nil, err
		}
		if isNew {
			r := *req
			r.HSMLabel = label
			if err := d.auditReq(ctx, audit.EventPinAdded, "", "", "", &r, nil); err != nil {
				return nil, err
			}
		}
	}
	k, err := d.cfg.HSM.Generate(ctx, label, req.KeySpec)
	if errors.Is(err, hsm.ErrKeyExists) {
		k, err := d.cfg.HSM.Find(ctx, label)
		if err != nil {
			return nil, fmt.Errorf("find existing %q: %w", label, err)
		}
		if k.Spec != req.KeySpec {
			return nil, &policy.Refusal{Reason: policy.ReasonKeySpec, Code: protocol.CodePolicyRefused,
				Msg: fmt.Sprintf("HSM key %q already exists as %s, request says %s", label, k.Spec, req.KeySpec)}
		}
		d.log.Info("HSM key of this generation already exists: wrapping it, not generating a second",
			"hsm_label", label, "request_id", req.RequestID, "pinned_here_before", !isNew)
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s %q: %w", req.KeySpec, label, err)
	}
	return k, nil
}
