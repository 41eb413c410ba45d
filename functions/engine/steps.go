package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/keyferry/keyferry/functions/pacer"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/metrics"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/hsmlabel"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// Mode values recorded on jobs and generations (defined in the store).
const (
	ModeAliasSwap = store.ModeAliasSwap
	ModeInPlace   = store.ModeInPlace
	ModeReimport  = store.ModeReimport
)

// JobTagKey tags every KMS key the engine creates with the creating job,
// so keys orphaned by a crash between CreateKey and the job write can be found.
const JobTagKey = "keyferry:job"

// DefaultRotationCap is the per-key on-demand rotation cap when the group
// does not set one (the key-group file's default, written once there).
const DefaultRotationCap = groups.DefaultRotationCap

func rotationCap(g *groups.Group) int {
	if g.RotationCap > 0 {
		return g.RotationCap
	}
	return DefaultRotationCap
}

// stepImported runs after ImportKeyMaterial: an in-place rotation of an
// existing key starts RotateKeyOnDemand; anything else is verified.
func (e *Engine) stepImported(ctx context.Context, g *groups.Group, j *store.Job) error {
	if j.Mode == ModeInPlace && !j.NewKey {
		return e.stepRotate(ctx, g, j)
	}
	if err := e.verify(ctx, g, j); err != nil {
		return err
	}
	return e.advance(ctx, j, store.StateVerified, "verified")
}

// stepRotating waits for the on-demand rotation, then verifies.
func (e *Engine) stepRotating(ctx context.Context, g *groups.Group, j *store.Job) error {
	if err := e.waitRotation(ctx, g, j); err != nil {
		return err
	}
	if err := e.verify(ctx, g, j); err != nil {
		return err
	}
	return e.advance(ctx, j, store.StateVerified, "verified")
}

// stepPlan decides the target key and generation.
func (e *Engine) stepPlan(ctx context.Context, g *groups.Group, j *store.Job) error {
	if j.Kind == store.KindReimport {
		gen, err := e.Store.Generation(ctx, g.Name, j.ReimportGeneration)
		if errors.Is(err, store.ErrNotFound) {
			return failf("generation %d of group %s does not exist", j.ReimportGeneration, g.Name)
		} else if err != nil {
			return err
		}
		j.Mode, j.KeyARN, j.HSMLabel, j.Generation, j.KeyMaterialID = ModeReimport, gen.KeyARN, gen.HSMLabel, gen.Generation, gen.KeyMaterialID
		return e.advance(ctx, j, store.StateKeyReady, "re-import "+gen.HSMLabel+" into "+gen.KeyARN)
	}
	head, err := e.Store.GroupHead(ctx, g.Name)
	if err != nil {
		return err
	}
	if head.Killed {
		return failf("group %s is killed (kill switch engaged); restore it first", g.Name)
	}
	latest, err := e.Store.Latest(ctx, g.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	newKey := true
	j.Mode = ModeAliasSwap
	var after int64
	if latest != nil {
		after = latest.Generation
	}
	// Failed jobs consume their generation number: the agent pins the HSM
	// label to the KMS key it was first wrapped for, so reusing the number
	// on a new key would be refused forever (the group would be wedged).
	if j.Generation, err = e.Store.ClaimGeneration(ctx, g.Name, after); err != nil {
		return err
	}
	if latest != nil {
		j.PreviousKeyARN = latest.KeyARN
		switch g.Mode {
		case groups.ModeInPlace:
			if latest.InPlaceRotations >= rotationCap(g) {
				return failf("key %s reached the on-demand rotation cap (%d) and group mode is in-place (use hybrid to continue on a new key)", latest.KeyARN, rotationCap(g))
			}
			newKey = false
		case groups.ModeHybrid:
			newKey = latest.InPlaceRotations >= rotationCap(g)
		}
	}
	label, err := hsmlabel.Label(g.Name, uint64(j.Generation))
	if err != nil {
		return failf("group %s cannot name an HSM key: %v", g.Name, err)
	}
	j.HSMLabel = label
	if !newKey && g.MultiRegion() && !groups.MultiRegionKey(latest.KeyARN) {
		// KMS fixes MultiRegion at CreateKey: this key can never have replicas.
		return failf("group %s lists replicas %v but its current key %s is single-Region (MultiRegion is fixed when a key is created) and %s rotation keeps that key; "+
			"set mode: alias-swap, whose next rotation creates a new multi-Region key, or remove replicas", g.Name, g.Replicas, latest.KeyARN, g.Mode)
	}
	if !newKey {
		j.Mode = ModeInPlace
		j.KeyARN = latest.KeyARN
		j.PreviousKeyMaterialID = latest.KeyMaterialID
		j.NewKey = false
		return e.advance(ctx, j, store.StateKeyReady, "in-place rotation of "+j.KeyARN)
	}
	if g.Mode != groups.ModeAliasSwap {
		j.Mode = ModeInPlace // the first key of an in-place/hybrid group; later rotations stay in place
	}
	info := g.Info()
	in := &kms.CreateKeyInput{
		Origin:      types.OriginTypeExternal,
		KeySpec:     types.KeySpec(info.Spec),
		KeyUsage:    types.KeyUsageType(g.KeyUsage),
		Description: aws.String(fmt.Sprintf("keyferry group %s generation %d. %s", g.Name, j.Generation, g.Description)),
	}
	if len(g.Policy) > 0 {
		in.Policy = aws.String(string(g.Policy))
	}
	for k, v := range g.Tags() {
		in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)})
	}
	in.Tags = append(in.Tags, types.Tag{TagKey: aws.String(JobTagKey), TagValue: aws.String(j.ID)})
	if g.MultiRegion() {
		in.MultiRegion = aws.Bool(true) // the primary; replicas: regions.go
	}
	if j.CreateKeyAttempted {
		// Resumed after a CreateKey whose outcome was not recorded: reuse its key.
		arn, err := e.maintenance().jobKey(ctx, g, j.ID)
		if err != nil {
			return err
		}
		if arn != "" {
			j.KeyARN, j.NewKey = arn, true
			return e.advance(ctx, j, store.StateKeyReady, "reused "+arn+" created before a crash")
		}
	}
	var out *kms.CreateKeyOutput
	err = e.attempt(ctx, j, flagCreateKey, func() error {
		err := e.call(ctx, g, pacer.OpCreateKey, func(ctx context.Context) (err error) {
			out, err = e.rotationKMS().CreateKey(ctx, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("kms CreateKey: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	j.KeyARN = aws.ToString(out.KeyMetadata.Arn)
	j.NewKey = true
	return e.advance(ctx, j, store.StateKeyReady, "created "+j.KeyARN)
}

func capsFor(c *store.Connection, spec keyspec.Spec) []keyspec.Combination {
	var out []keyspec.Combination
	for _, cp := range c.Capabilities {
		if cp.KeySpec != string(spec) {
			continue
		}
		for _, a := range cp.Algorithms {
			for _, w := range cp.WrappingKeySpecs {
				out = append(out, keyspec.Combination{Algorithm: keyspec.WrappingAlgorithm(a), KeySpec: keyspec.WrappingKeySpec(w)})
			}
		}
	}
	return out
}

// stepParams picks the wrapping algorithm (group setting x agent
// capability) and fetches import parameters.
func (e *Engine) stepParams(ctx context.Context, g *groups.Group, j *store.Job) error {
	agents, err := e.agents().liveAgents(ctx, g)
	if err != nil {
		return err
	}
	var combo keyspec.Combination
	found := false
	var lastErr error
	for _, c := range agents {
		if combo, lastErr = g.WrappingChoices(capsFor(c, g.KeySpec)); lastErr == nil {
			found = true
			break
		}
	}
	if !found {
		if len(agents) == 0 {
			return fmt.Errorf("%w: pool %s", ErrNoAgent, g.HSMPool)
		}
		return failf("no connected agent of pool %s can wrap %s as group %s requires: %v", g.HSMPool, g.KeySpec, g.Name, lastErr)
	}
	var out *kms.GetParametersForImportOutput
	err = e.call(ctx, g, pacer.OpGetParametersForImport, func(ctx context.Context) (err error) {
		out, err = e.rotationKMS().GetParametersForImport(ctx, &kms.GetParametersForImportInput{
			KeyId:             aws.String(j.KeyARN),
			WrappingAlgorithm: types.AlgorithmSpec(combo.Algorithm),
			WrappingKeySpec:   types.WrappingKeySpec(combo.KeySpec),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("kms GetParametersForImport: %w", err)
	}
	j.WrappingAlgorithm, j.WrappingKeySpec = string(combo.Algorithm), string(combo.KeySpec)
	j.WrappingPublicKey, j.ImportToken = out.PublicKey, out.ImportToken
	j.ParametersValidTo = aws.ToTime(out.ParametersValidTo)
	return e.advance(ctx, j, store.StateParams, fmt.Sprintf("import parameters %s/%s", combo.Algorithm, combo.KeySpec))
}

// maxParamFetches bounds how often one job fetches import parameters.
const maxParamFetches = 6

func fetches(j *store.Job) int {
	n := 0
	for _, t := range j.History {
		if t.To == store.StateParams {
			n++
		}
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// wrapRequest is the wrap_request of job j with the given request id, nonce
// and challenge (no validity window): what stepRequest sends, and what
// acceptWrapResult binds a result to (protocol.WrapResult.Matches).
func wrapRequest(g *groups.Group, j *store.Job, requestID string, nonce, challenge []byte) protocol.WrapRequest {
	op := protocol.OpGenerate
	if j.Kind == store.KindReimport || j.Region != "" {
		// A replica gets the HSM key its primary got (regions.go).
		op = protocol.OpRewrap
	}
	return protocol.WrapRequest{
		RequestID: requestID, JobID: j.ID, Nonce: nonce,
		Account: g.Account, Region: g.Region, Group: g.Name, KeyARN: j.KeyARN, KeySpec: g.KeySpec,
		Operation: op, HSMLabel: j.HSMLabel,
		WrappingAlgorithm: keyspec.WrappingAlgorithm(j.WrappingAlgorithm), WrappingKeySpec: keyspec.WrappingKeySpec(j.WrappingKeySpec),
		WrappingPublicKey: j.WrappingPublicKey, Challenge: challenge,
	}
}

// stepRequest signs and posts the wrap_request to a live agent.
func (e *Engine) stepRequest(ctx context.Context, g *groups.Group, j *store.Job) error {
	now := e.now()
	expires := now.Add(e.requestTTL())
	if j.ParametersValidTo.Before(expires.Add(e.requestTTL())) {
		if fetches(j) >= maxParamFetches {
			return failf("import parameters fetched %d times and never valid long enough for a wrap_request (request TTL %s)", fetches(j), e.requestTTL())
		}
		return e.advance(ctx, j, store.StateKeyReady, "import parameters about to expire: fetch new ones")
	}
	agents, err := e.agents().liveAgents(ctx, g)
	if err != nil {
		return err
	}
	combo := keyspec.Combination{Algorithm: keyspec.WrappingAlgorithm(j.WrappingAlgorithm), KeySpec: keyspec.WrappingKeySpec(j.WrappingKeySpec)}
	var targets []*store.Connection
	for _, c := range agents {
		for _, cc := range capsFor(c, g.KeySpec) {
			if cc == combo {
				targets = append(targets, c)
				break
			}
		}
	}
	if len(targets) == 0 {
		return fmt.Errorf("%w: pool %s (able to do %s/%s)", ErrNoAgent, g.HSMPool, combo.Algorithm, combo.KeySpec)
	}
	if targets, err = e.agents().byLoad(ctx, targets); err != nil {
		return err
	}
	nonce, err := protocol.NewNonce()
	if err != nil {
		return err
	}
	var challenge []byte
	if g.Info().Family == keyspec.FamilyHMAC {
		challenge = make([]byte, 32)
		_, _ = rand.Read(challenge)
	}
	req := wrapRequest(g, j, "req-"+randomHex(12), nonce, challenge)
	req.IssuedAt, req.ExpiresAt = now, expires
	op := req.Operation
	msg, err := protocol.Seal(ctx, e.Signer, e.SignerID, protocol.ActionWrapRequest, req)
	if err != nil {
		// The signer is KMS (kms:Sign): throttling or a 5xx is transient;
		// the sweeper retries the step within the job's attempts.
		return fmt.Errorf("seal wrap_request: %w", err)
	}
	j.RequestID, j.Nonce, j.Challenge, j.RequestedAt = req.RequestID, nonce, challenge, now
	j.Deadline = expires.Add(e.skew())
	for i, c := range targets {
		j.ConnectionID, j.AgentID = c.ID, c.AgentID
		if i == 0 {
			// Record the request before sending so a fast answer finds it.
			if err := e.commit(ctx, j, store.StateRequested, "wrap_request "+req.RequestID+" to "+c.AgentID, time.Time{}); err != nil {
				return err
			}
		} else if err := e.Store.Save(ctx, j); err != nil {
			return err
		}
		gone, err := e.agents().post(ctx, j, c, msg)
		if err != nil {
			return fmt.Errorf("post wrap_request to %s: %w", c.ID, err)
		}
		if gone {
			continue
		}
		e.log().InfoContext(ctx, "wrap_request sent", "job", j.ID, "request", req.RequestID, "agent", c.AgentID, "connection", c.ID, "operation", string(op))
		return nil
	}
	// Every post answered Gone: no agent holds the request. Back to PARAMS
	// (its parameters still hold), where the next hello of any agent of the
	// pool runs it on (resumeForAgent), not only the last one tried.
	j.ConnectionID = ""
	if err := e.advance(ctx, j, store.StateParams, fmt.Sprintf("every connection of pool %s gone: wait for the next hello of the pool", g.HSMPool)); err != nil {
		return err
	}
	// A hello that landed while the posts failed looked for waiting jobs
	// before this one was recorded waiting: look once more, now that it is,
	// so the job does not wait for a hello that already came.
	if now, err := e.agents().liveAgents(ctx, g); err == nil && len(now) > 0 {
		return nil // Run goes on with PARAMS: the request goes to the new connection
	}
	return fmt.Errorf("%w: every connection of pool %s is gone", ErrNoAgent, g.HSMPool)
}

func apiCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// stepImport imports the wrapped material.
func (e *Engine) stepImport(ctx context.Context, g *groups.Group, j *store.Job) error {
	now := e.now()
	if !j.ParametersValidTo.After(now) {
		if fetches(j) >= maxParamFetches {
			return failf("import token expired %d times", fetches(j))
		}
		return e.advance(ctx, j, store.StateKeyReady, "import token expired: fetch new parameters and ask again")
	}
	info := g.Info()
	if j.NewKey {
		// Resumed after a crash that followed a successful import?
		d, err := e.describe(ctx, g, j.KeyARN)
		if err != nil {
			return err
		}
		if d.KeyState != types.KeyStatePendingImport {
			j.KeyMaterialID = aws.ToString(d.CurrentKeyMaterialId)
			j.ValidTo = aws.ToTime(d.ValidTo)
			return e.advance(ctx, j, store.StateImported, "material already imported")
		}
	}
	in := &kms.ImportKeyMaterialInput{
		KeyId: aws.String(j.KeyARN), ImportToken: j.ImportToken, EncryptedKeyMaterial: j.WrappedMaterial,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialDoesNotExpire,
	}
	j.ValidTo = time.Time{}
	if g.MaterialExpires() {
		j.ValidTo = now.Add(g.ValidFor()).Truncate(time.Second)
		in.ExpirationModel = types.ExpirationModelTypeKeyMaterialExpires
		in.ValidTo = aws.Time(j.ValidTo)
	}
	if info.Symmetric() {
		switch {
		case j.Kind == store.KindReimport:
			in.ImportType = types.ImportTypeExistingKeyMaterial
			if j.KeyMaterialID != "" {
				in.KeyMaterialId = aws.String(j.KeyMaterialID)
			}
		case !j.NewKey && j.Region != "":
			// In place across Regions: a replica takes the primary's new
			// material as EXISTING_KEY_MATERIAL (regions.go).
			in.ImportType = types.ImportTypeExistingKeyMaterial
			in.KeyMaterialId = aws.String(j.KeyMaterialID)
		case !j.NewKey:
			in.ImportType = types.ImportTypeNewKeyMaterial
		}
	}
	var out *kms.ImportKeyMaterialOutput
	var err error // the KMS call's (a failure to record ImportSent returns at once)
	importMaterial := func() error {
		err = e.call(ctx, g, pacer.OpImportKeyMaterial, func(ctx context.Context) (err error) {
			out, err = e.rotationKMS().ImportKeyMaterial(ctx, in)
			return err
		})
		return err
	}
	if in.ImportType != types.ImportTypeNewKeyMaterial {
		_ = importMaterial()
	} else {
		if !j.ImportSent {
			if err := e.removeForeignPending(ctx, g, j); err != nil {
				return err
			}
		}
		if rerr := e.attempt(ctx, j, flagImportSent, importMaterial); rerr != nil && err == nil {
			return rerr
		}
	}
	switch code := apiCode(err); {
	case err == nil:
	case code == "ExpiredImportTokenException" || code == "InvalidImportTokenException":
		return e.advance(ctx, j, store.StateKeyReady, code+": fetch new parameters and ask again")
	case (code == "ConflictException" || code == "IncorrectKeyMaterialException") && in.ImportType == types.ImportTypeNewKeyMaterial:
		// A retry (the SDK's own after a lost answer, or a resumed job)
		// of an import that took effect: KMS answers ConflictException (a
		// material is pending) or IncorrectKeyMaterialException (these
		// bytes are already associated). The pending material is ours:
		// any other job's was removed before ImportSent and the group lock
		// keeps other jobs out.
		id, perr := e.pendingMaterial(ctx, g, j.KeyARN)
		if perr != nil {
			return fmt.Errorf("kms ListKeyRotations %s: %w", j.KeyARN, perr)
		}
		if id == "" {
			return failf("kms ImportKeyMaterial refused the material: %v", err)
		}
		j.KeyMaterialID = id
		return e.advance(ctx, j, store.StateImported, "material already pending rotation")
	case code == "IncorrectKeyMaterialException" || code == "InvalidCiphertextException" ||
		code == "ValidationException" || code == "KMSInvalidStateException" || code == "UnsupportedOperationException":
		return failf("kms ImportKeyMaterial refused the material: %v", err)
	default:
		return fmt.Errorf("kms ImportKeyMaterial: %w", err)
	}
	if id := aws.ToString(out.KeyMaterialId); id != "" {
		j.KeyMaterialID = id
	}
	return e.advance(ctx, j, store.StateImported, "imported material "+j.KeyMaterialID)
}

func (e *Engine) describe(ctx context.Context, g *groups.Group, keyID string) (*types.KeyMetadata, error) {
	var out *kms.DescribeKeyOutput
	err := e.call(ctx, g, pacer.OpDescribeKey, func(ctx context.Context) (err error) {
		out, err = e.rotationKMS().DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kms DescribeKey %s: %w", keyID, err)
	}
	return out.KeyMetadata, nil
}

func (e *Engine) pendingMaterial(ctx context.Context, g *groups.Group, keyARN string) (string, error) {
	var out *kms.ListKeyRotationsOutput
	err := e.call(ctx, g, pacer.OpListKeyRotations, func(ctx context.Context) (err error) {
		out, err = e.rotationKMS().ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(keyARN), IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
		return err
	})
	if err != nil {
		return "", err
	}
	for _, r := range out.Rotations {
		if r.KeyMaterialState == types.KeyMaterialStatePendingRotation || r.KeyMaterialState == types.KeyMaterialStatePendingMultiRegionImportAndRotation {
			return aws.ToString(r.KeyMaterialId), nil
		}
	}
	return "", nil
}

// stepRotate starts the on-demand rotation to the pending material.
func (e *Engine) stepRotate(ctx context.Context, g *groups.Group, j *store.Job) error {
	err := e.call(ctx, g, pacer.OpRotateKeyOnDemand, func(ctx context.Context) error {
		_, err := e.rotationKMS().RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(j.KeyARN)})
		return err
	})
	if err != nil {
		code := apiCode(err)
		if code == "LimitExceededException" {
			return failf("kms RotateKeyOnDemand: per-key rotation cap reached: %v", err)
		}
		// Resumed after a crash that followed RotateKeyOnDemand?
		d, derr := e.describe(ctx, g, j.KeyARN)
		if derr == nil && aws.ToString(d.CurrentKeyMaterialId) == j.KeyMaterialID {
			return e.advance(ctx, j, store.StateRotating, "rotation already done")
		}
		if code == "ConflictException" {
			return e.advance(ctx, j, store.StateRotating, "rotation already running")
		}
		return fmt.Errorf("kms RotateKeyOnDemand: %w", err)
	}
	return e.advance(ctx, j, store.StateRotating, "RotateKeyOnDemand")
}

// waitRotation waits (bounded) for the on-demand rotation to complete.
func (e *Engine) waitRotation(ctx context.Context, g *groups.Group, j *store.Job) error {
	poll, wait := e.RotationPoll, e.RotationWait
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	if wait <= 0 {
		wait = 20 * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		var st *kms.GetKeyRotationStatusOutput
		err := e.call(ctx, g, pacer.OpGetKeyRotationStatus, func(ctx context.Context) (err error) {
			st, err = e.rotationKMS().GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(j.KeyARN)})
			return err
		})
		if err != nil {
			return fmt.Errorf("kms GetKeyRotationStatus: %w", err)
		}
		if st.OnDemandRotationStartDate == nil {
			d, err := e.describe(ctx, g, j.KeyARN)
			if err != nil {
				return err
			}
			cur := aws.ToString(d.CurrentKeyMaterialId)
			if cur != j.PreviousKeyMaterialID && (j.KeyMaterialID == "" || cur == j.KeyMaterialID) {
				j.KeyMaterialID = cur
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("engine: on-demand rotation of %s still running after %s", j.KeyARN, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// stepSwitch moves the alias (new keys) and records the generation.
func (e *Engine) stepSwitch(ctx context.Context, g *groups.Group, j *store.Job) error {
	now := e.now()
	if j.Kind == store.KindReimport {
		gen, err := e.Store.Generation(ctx, g.Name, j.Generation)
		if err != nil {
			return err
		}
		gen.ExpiresAt = j.ValidTo
		if gen.State == store.GenKilled {
			gen.State = store.GenPrevious
			if latest, err := e.Store.Latest(ctx, g.Name); err == nil && latest.Generation == gen.Generation {
				gen.State = store.GenCurrent
			}
		}
		if j.KeyMaterialID != "" {
			gen.KeyMaterialID = j.KeyMaterialID
		}
		if err := e.Store.UpdateGeneration(ctx, gen); err != nil {
			return err
		}
		return e.advance(ctx, j, store.StateSwitched, "generation re-armed")
	}
	if j.NewKey {
		err := e.attempt(ctx, j, flagAliasMove, func() error {
			err := e.call(ctx, g, pacer.OpUpdateAlias, func(ctx context.Context) error {
				_, err := e.rotationKMS().UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: aws.String(g.Alias), TargetKeyId: aws.String(j.KeyARN)})
				return err
			})
			if apiCode(err) == "NotFoundException" {
				err = e.call(ctx, g, pacer.OpCreateAlias, func(ctx context.Context) error {
					_, err := e.rotationKMS().CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(g.Alias), TargetKeyId: aws.String(j.KeyARN)})
					return err
				})
			}
			if err != nil {
				return fmt.Errorf("kms alias %s -> %s: %w", g.Alias, j.KeyARN, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if j.PreviousKeyARN != "" && j.PreviousKeyARN != j.KeyARN && g.PreviousKey == groups.PreviousDisable {
			err := e.call(ctx, g, pacer.OpDisableKey, func(ctx context.Context) error {
				_, err := e.rotationKMS().DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(j.PreviousKeyARN)})
				return err
			})
			if err == nil {
				err = e.disableReplicas(ctx, g, j.PreviousKeyARN)
			}
			if err != nil {
				return fmt.Errorf("kms DisableKey %s: %w", j.PreviousKeyARN, err)
			}
		}
	}
	prevGens, err := e.Store.Generations(ctx, g.Name)
	if err != nil {
		return err
	}
	rotations := 0
	for _, p := range prevGens {
		if p.Generation == j.Generation-1 && !j.NewKey {
			rotations = p.InPlaceRotations + 1
		}
	}
	gen := &store.Generation{
		Group: g.Name, Generation: j.Generation, KeyARN: j.KeyARN, KeyMaterialID: j.KeyMaterialID,
		HSMLabel: j.HSMLabel, KeySpec: string(g.KeySpec), Mode: j.Mode, State: store.GenCurrent,
		InPlaceRotations: rotations, CreatedAt: j.CreatedAt, RotatedAt: now, ExpiresAt: j.ValidTo, JobID: j.ID,
	}
	if err := e.Store.PutGeneration(ctx, gen); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		have, gerr := e.Store.Generation(ctx, g.Name, j.Generation)
		if gerr != nil {
			// Refused, yet not there (or unreadable): try again later
			// rather than fail a job whose alias may already have moved.
			return fmt.Errorf("record generation %d of %s: %w (read back: %v)", j.Generation, g.Name, err, gerr)
		}
		if have.JobID != j.ID {
			return failf("generation %d of %s was recorded by another job (%s)", j.Generation, g.Name, have.JobID)
		}
	}
	for _, p := range prevGens {
		if p.Generation != j.Generation && p.State == store.GenCurrent {
			p.State = store.GenPrevious
			if err := e.Store.UpdateGeneration(ctx, p); err != nil {
				return err
			}
		}
	}
	note := "generation recorded"
	if j.NewKey {
		note = "alias " + g.Alias + " -> " + j.KeyARN
	}
	return e.advance(ctx, j, store.StateSwitched, note)
}

func (e *Engine) stepFinish(ctx context.Context, g *groups.Group, j *store.Job) error {
	if err := e.advance(ctx, j, store.StateSucceeded, ""); err != nil {
		return err
	}
	dims := map[string]string{"Group": g.Name}
	e.Metrics.Emit(metrics.RotationsSucceeded, 1, metrics.Count, dims)
	e.Metrics.Emit(metrics.RotationLatency, float64(e.now().Sub(j.CreatedAt).Milliseconds()), metrics.Millis, dims)
	if !j.ValidTo.IsZero() {
		e.Metrics.Emit(metrics.MaterialSecondsToExpiry, j.ValidTo.Sub(e.now()).Seconds(), metrics.Seconds, dims)
	}
	e.log().InfoContext(ctx, "job succeeded", "job", j.ID, "group", g.Name, "kind", string(j.Kind), "key", j.KeyARN, "generation", j.Generation, "key_material_id", j.KeyMaterialID)
	e.alarms().reconcileAfterSwitch(ctx, g, j)
	return nil
}

// cleanupNewKey removes a key created by a failed job that never got the
// alias: material deleted and deletion scheduled, so nothing is left in
// PendingImport and nothing unverified stays usable.
func (e *Engine) cleanupNewKey(ctx context.Context, g *groups.Group, j *store.Job) {
	if j.PrimaryKeyARN != "" && j.KeyARN != j.PrimaryKeyARN {
		// Failed in a replica Region: the job's key is the primary.
		pj := *j
		pj.KeyARN = j.PrimaryKeyARN
		j = &pj
	}
	if !j.NewKey || j.KeyARN == "" || j.AliasMoveAttempted {
		// A key the alias was (or may have been) moved to may hold data
		// encrypted since: it is never deleted by a cleanup.
		return
	}
	for _, t := range j.History {
		if t.To == store.StateSwitched {
			return
		}
	}
	d, err := e.describe(ctx, g, j.KeyARN)
	if err != nil {
		e.log().WarnContext(ctx, "cleanup of failed job's key: cannot read it", "job", j.ID, "key", j.KeyARN, "error", err.Error())
		return
	}
	if d.KeyState == types.KeyStatePendingDeletion {
		return
	}
	// Never the key the group's alias names (a job that failed after the
	// alias moved): deleting it would leave the alias on a key without
	// material. It stays, usable, and the next rotation moves the alias.
	if aliased, err := e.aliasTargets(ctx, g, j.KeyARN); err != nil || aliased {
		if err != nil {
			e.log().WarnContext(ctx, "cleanup of failed job's key: cannot read the group's alias", "job", j.ID, "key", j.KeyARN, "error", err.Error())
		}
		if aliased {
			e.log().ErrorContext(ctx, "failed job's key carries the group's alias: kept", "job", j.ID, "key", j.KeyARN, "alias", g.Alias)
		}
		return
	}
	if err := e.cleanupReplicas(ctx, g, j.KeyARN); err != nil {
		e.log().WarnContext(ctx, "cleanup of failed job's replicas failed", "job", j.ID, "key", j.KeyARN, "error", err.Error())
		return
	}
	if d.KeyState != types.KeyStatePendingImport {
		_ = e.call(ctx, g, pacer.OpDeleteImportedKeyMaterial, func(ctx context.Context) error {
			_, err := e.rotationKMS().DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(j.KeyARN)})
			return err
		})
	}
	err = e.call(ctx, g, pacer.OpScheduleKeyDeletion, func(ctx context.Context) error {
		_, err := e.rotationKMS().ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(j.KeyARN), PendingWindowInDays: aws.Int32(7)})
		return err
	})
	if err != nil {
		e.log().WarnContext(ctx, "cleanup of failed job's key failed", "job", j.ID, "key", j.KeyARN, "error", err.Error())
		return
	}
	e.log().InfoContext(ctx, "scheduled deletion of failed job's key", "job", j.ID, "key", j.KeyARN)
}

// aliasTargets reports whether the group's alias points at keyARN.
func (e *Engine) aliasTargets(ctx context.Context, g *groups.Group, keyARN string) (bool, error) {
	md, err := e.describe(ctx, g, g.Alias)
	if apiCode(err) == "NotFoundException" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return aws.ToString(md.Arn) == keyARN, nil
}
