package kmsemu

import (
	"time"
)

func init() {
	register("RotateKeyOnDemand", (*Server).rotateKeyOnDemand)
	register("ListKeyRotations", (*Server).listKeyRotations)
	register("GetKeyRotationStatus", (*Server).getKeyRotationStatus)
}

// rotateKeyOnDemand starts an asynchronous on-demand rotation. For EXTERNAL
// keys the new material must have been imported with ImportType
// NEW_KEY_MATERIAL (PENDING_ROTATION); for AWS_KMS keys it is generated.
func (s *Server) rotateKeyOnDemand(now time.Time, body []byte) (any, *Error) {
	k, e := s.keyFromBody(body, false)
	if e != nil {
		return nil, e
	}
	if !k.info.Symmetric() {
		return nil, errf(errUnsupported, "On-demand rotation is only supported for symmetric encryption keys; %s is %s", k.arn, k.spec)
	}
	if k.isReplica(s.opts.Region) {
		return nil, errf(errUnsupported, "%s is a multi-Region replica key; invoke on-demand rotation on its primary key in %s", k.arn, k.mr.primary)
	}
	if e := k.usable(); e != nil {
		return nil, e
	}
	if !k.rotationStart.IsZero() {
		return nil, errf(errConflict, "%s already has an on-demand rotation in progress", k.arn)
	}
	if len(k.rotations) >= s.opts.RotationCap {
		return nil, errf(errLimitExceeded, "%s has reached the maximum of %d on-demand rotations", k.arn, s.opts.RotationCap)
	}
	if k.origin == originExternal {
		pm := k.pendingRotation()
		if pm == nil {
			return nil, errf(errInvalidState, "%s has no key material in PENDING_ROTATION state; import new key material with ImportType NEW_KEY_MATERIAL first", k.arn)
		}
		if pm.state == matPendingMR {
			return nil, errf(errInvalidState, "%s key material %s is %s: import it into the replica keys in %v with ImportType EXISTING_KEY_MATERIAL first", k.arn, pm.id, matPendingMR, k.mr.missingPending(pm.id))
		}
	} else {
		raw, parsed, err := generateMaterial(k.info)
		if err != nil {
			return nil, errf("KMSInternalException", "generate key material: %v", err)
		}
		k.materials = append(k.materials, &material{id: materialID(k.id, raw), raw: raw, parsed: parsed, state: matPendingRotation, imported: true, associated: now})
	}
	k.rotationStart = now
	k.rotationDone = now.Add(max(s.opts.RotationDelay, 0))
	if s.opts.RotationDelay < 0 {
		k.rotationDone = now
	}
	return map[string]any{"KeyId": k.arn}, nil
}

// completeRotation makes the PENDING_ROTATION material current. Caller holds s.mu.
func (s *Server) completeRotation(k *key, at time.Time) {
	k.rotationStart, k.rotationDone = time.Time{}, time.Time{}
	next := k.pendingRotation()
	if next == nil { // deleted meanwhile: the rotation fails silently, as an async job would
		return
	}
	if cur := k.current(); cur != nil {
		cur.state = matNonCurrent
	}
	next.state = matCurrent
	k.rotations = append(k.rotations, rotation{materialID: next.id, date: at})
	s.log.Info("key rotated", "key", k.id, "key_material_id", next.id)
	// Rotation of a multi-Region primary rotates its replicas: the material
	// every replica imported becomes current there too (RotateKeyOnDemand).
	if k.mr != nil && !k.isReplica(s.opts.Region) {
		for _, r := range k.mr.replicaRegions() {
			rk := k.mr.members[r]
			rm := rk.materialByID(next.id)
			if rm == nil {
				continue
			}
			if cur := rk.current(); cur != nil {
				cur.state = matNonCurrent
			}
			rm.state = matCurrent
			rk.rotations = append(rk.rotations, rotation{materialID: next.id, date: at})
		}
	}
}

type rotationEntry struct {
	KeyId                  string `json:"KeyId"`
	KeyMaterialId          string `json:"KeyMaterialId,omitempty"`
	KeyMaterialDescription string `json:"KeyMaterialDescription,omitempty"`
	ImportState            string `json:"ImportState,omitempty"`
	KeyMaterialState       string `json:"KeyMaterialState,omitempty"`
	ExpirationModel        string `json:"ExpirationModel,omitempty"`
	ValidTo                *epoch `json:"ValidTo,omitempty"`
	RotationDate           *epoch `json:"RotationDate,omitempty"`
	RotationType           string `json:"RotationType,omitempty"`
}

func (s *Server) listKeyRotations(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId              string
		IncludeKeyMaterial string
		Limit              *int
		Marker             string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	switch req.IncludeKeyMaterial {
	case "", "ROTATIONS_ONLY", "ALL_KEY_MATERIAL":
	default:
		return nil, errf(errValidation, "1 validation error detected: Value '%s' at 'includeKeyMaterial' failed to satisfy constraint: Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]", req.IncludeKeyMaterial)
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if !k.info.Symmetric() {
		return nil, errf(errUnsupported, "%s is %s; key rotations apply to symmetric encryption keys only", k.arn, k.spec)
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	rotated := map[string]time.Time{}
	for _, r := range k.rotations {
		rotated[r.materialID] = r.date
	}
	var all []rotationEntry
	for _, m := range k.materials {
		date, wasRotation := rotated[m.id]
		if req.IncludeKeyMaterial != "ALL_KEY_MATERIAL" && !wasRotation {
			continue
		}
		ent := rotationEntry{KeyId: k.id, KeyMaterialId: m.id, KeyMaterialDescription: m.description, KeyMaterialState: m.state}
		if wasRotation {
			ent.RotationDate, ent.RotationType = tp(date), "ON_DEMAND"
		}
		if k.origin == originExternal {
			ent.ImportState = importPending
			if m.imported {
				ent.ImportState = importImported
				ent.ExpirationModel = m.model
				if m.model == expiresModel {
					ent.ValidTo = tp(m.validTo)
				}
			}
		}
		all = append(all, ent)
	}
	start, end, next, e := page(req.Limit, req.Marker, len(all))
	if e != nil {
		return nil, e
	}
	out := append([]rotationEntry{}, all[start:end]...)
	resp := map[string]any{"Rotations": out, "Truncated": next != ""}
	if next != "" {
		resp["NextMarker"] = next
	}
	return resp, nil
}

func (s *Server) getKeyRotationStatus(_ time.Time, body []byte) (any, *Error) {
	k, e := s.keyFromBody(body, false)
	if e != nil {
		return nil, e
	}
	if !k.info.Symmetric() {
		return nil, errf(errUnsupported, "%s is %s; rotation status applies to symmetric encryption keys only", k.arn, k.spec)
	}
	resp := map[string]any{"KeyId": k.arn, "KeyRotationEnabled": false}
	if !k.rotationStart.IsZero() {
		resp["OnDemandRotationStartDate"] = tp(k.rotationStart)
	}
	return resp, nil
}
