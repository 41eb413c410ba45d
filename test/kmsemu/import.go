package kmsemu

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/wrapping"
)

// ImportParametersValidity is how long a wrapping key and import token from
// GetParametersForImport stay usable (AWS: 24 hours).
const ImportParametersValidity = 24 * time.Hour

// MaxValidToAhead is the furthest ValidTo AWS accepts on import.
const MaxValidToAhead = 365 * 24 * time.Hour

type importParams struct {
	keyID   string
	priv    *rsa.PrivateKey
	alg     keyspec.WrappingAlgorithm
	wks     keyspec.WrappingKeySpec
	validTo time.Time
}

func init() {
	register("GetParametersForImport", (*Server).getParametersForImport)
	register("ImportKeyMaterial", (*Server).importKeyMaterial)
	register("DeleteImportedKeyMaterial", (*Server).deleteImportedKeyMaterial)
}

func (s *Server) getParametersForImport(now time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId             string
		WrappingAlgorithm string
		WrappingKeySpec   string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	alg := keyspec.WrappingAlgorithm(req.WrappingAlgorithm)
	wks := keyspec.WrappingKeySpec(req.WrappingKeySpec)
	if !alg.Valid() && alg != keyspec.RSAESPKCS1V15Rejected {
		return nil, errf(errValidation, "1 validation error detected: Value '%s' at 'wrappingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256]", alg)
	}
	if wks.Bits() == 0 {
		return nil, errf(errValidation, "1 validation error detected: Value '%s' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096]", wks)
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if k.origin != originExternal {
		return nil, errf(errUnsupported, "%s origin is %s; GetParametersForImport needs an EXTERNAL key", k.arn, k.origin)
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if err := keyspec.CheckWrapping(k.spec, alg, wks); err != nil {
		return nil, errf(errValidation, "%v", err)
	}
	priv, err := s.pool.get(wks)
	if err != nil {
		return nil, errf("KMSInternalException", "wrapping key: %v", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, errf("KMSInternalException", "wrapping key: %v", err)
	}
	token := make([]byte, 256)
	if _, err := rand.Read(token); err != nil {
		return nil, errf("KMSInternalException", "import token: %v", err)
	}
	p := &importParams{keyID: k.id, priv: priv, alg: alg, wks: wks, validTo: now.Add(ImportParametersValidity)}
	s.tokens[string(token)] = p
	return map[string]any{"KeyId": k.arn, "ImportToken": token, "PublicKey": pub, "ParametersValidTo": tp(p.validTo)}, nil
}

type importReq struct {
	KeyId                  string
	ImportToken            []byte
	EncryptedKeyMaterial   []byte
	ValidTo                *epoch
	ExpirationModel        string
	ImportType             string
	KeyMaterialId          string
	KeyMaterialDescription *string
}

// validateExpiration applies the ExpirationModel/ValidTo rules and returns
// the effective model and ValidTo.
func validateExpiration(now time.Time, req *importReq) (string, time.Time, *Error) {
	model := req.ExpirationModel
	if model == "" {
		model = expiresModel
	}
	switch model {
	case expiresModel:
		if req.ValidTo == nil {
			return "", time.Time{}, errf(errValidation, "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
		}
		vt := time.Time(*req.ValidTo)
		if !vt.After(now) {
			return "", time.Time{}, errf(errValidation, "ValidTo %s must be in the future", vt.UTC().Format(time.RFC3339))
		}
		if vt.Sub(now) > MaxValidToAhead {
			return "", time.Time{}, errf(errValidation, "ValidTo %s is more than 365 days in the future", vt.UTC().Format(time.RFC3339))
		}
		return model, vt, nil
	case doesNotExpireModel:
		if req.ValidTo != nil {
			return "", time.Time{}, errf(errValidation, "A validTo date cannot be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
		}
		return model, time.Time{}, nil
	}
	return "", time.Time{}, errf(errValidation, "1 validation error detected: Value '%s' at 'expirationModel' failed to satisfy constraint: Member must satisfy enum value set: [KEY_MATERIAL_DOES_NOT_EXPIRE, KEY_MATERIAL_EXPIRES]", model)
}

func (s *Server) importKeyMaterial(now time.Time, body []byte) (any, *Error) {
	var req importReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if len(req.ImportToken) == 0 || len(req.ImportToken) > 6144 {
		return nil, errf(errValidation, "ImportToken must be 1..6144 bytes")
	}
	if len(req.EncryptedKeyMaterial) == 0 || len(req.EncryptedKeyMaterial) > 6144 {
		return nil, errf(errValidation, "EncryptedKeyMaterial must be 1..6144 bytes")
	}
	switch req.ImportType {
	case "", "NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL":
	default:
		return nil, errf(errValidation, "1 validation error detected: Value '%s' at 'importType' failed to satisfy constraint: Member must satisfy enum value set: [NEW_KEY_MATERIAL, EXISTING_KEY_MATERIAL]", req.ImportType)
	}
	if req.ImportType == "NEW_KEY_MATERIAL" && req.KeyMaterialId != "" {
		return nil, errf(errValidation, "You cannot specify a KeyMaterialId when ImportType is NEW_KEY_MATERIAL")
	}
	model, validTo, e := validateExpiration(now, &req)
	if e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if k.origin != originExternal {
		return nil, errf(errUnsupported, "%s origin is %s; ImportKeyMaterial needs an EXTERNAL key", k.arn, k.origin)
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if !k.info.Symmetric() && (req.ImportType != "" || req.KeyMaterialId != "" || req.KeyMaterialDescription != nil) {
		return nil, errf(errValidation, "ImportType, KeyMaterialId and KeyMaterialDescription are only valid for symmetric encryption keys; %s is %s", k.arn, k.spec)
	}
	p, ok := s.tokens[string(req.ImportToken)]
	if !ok || p.keyID != k.id {
		return nil, errf(errInvalidToken, "The import token is invalid for %s", k.arn)
	}
	if now.After(p.validTo) {
		return nil, errf(errExpiredToken, "The import token expired at %s", p.validTo.UTC().Format(time.RFC3339))
	}
	if err := keyspec.CheckWrapping(k.spec, p.alg, p.wks); err != nil {
		return nil, errf(errValidation, "%v", err)
	}
	raw, err := wrapping.Unwrap(p.priv, p.alg, req.EncryptedKeyMaterial)
	if err != nil {
		if errors.Is(err, wrapping.ErrUnwrap) {
			return nil, errf(errInvalidCipher, "The key material could not be decrypted with the wrapping key of this import token (%s)", p.alg)
		}
		return nil, errf("KMSInternalException", "unwrap: %v", err)
	}
	parsed, err := parseMaterial(k.spec, raw)
	if err != nil {
		clear(raw)
		return nil, errf(errIncorrectMat, "The key material is not valid for %s: %v", k.spec, err)
	}
	id := materialID(k.id, raw)
	set := func(m *material) {
		m.raw, m.parsed, m.imported = raw, parsed, true
		m.model, m.validTo = model, validTo
		if req.KeyMaterialDescription != nil {
			m.description = *req.KeyMaterialDescription
		}
	}
	importType := req.ImportType
	if importType == "" {
		importType = "EXISTING_KEY_MATERIAL"
		if len(k.materials) == 0 {
			importType = "NEW_KEY_MATERIAL"
		}
	}
	if k.isReplica(s.opts.Region) {
		// A replica takes only material of its primary (regions.go).
		if req.ImportType == "NEW_KEY_MATERIAL" {
			clear(raw)
			return nil, errf(errUnsupported, "%s is a multi-Region replica key: new key material cannot be imported into it directly; import it into the primary key in %s with ImportType NEW_KEY_MATERIAL, then here with EXISTING_KEY_MATERIAL", k.arn, k.mr.primary)
		}
		if k.materialByID(id) == nil {
			var pm *material
			if p := k.primaryOf(); p != nil {
				pm = p.materialByID(id)
			}
			if pm == nil || (req.KeyMaterialId != "" && req.KeyMaterialId != id) {
				clear(raw)
				return nil, errf(errIncorrectMat, "The key material is not key material of the multi-Region primary key of %s; import the same key material as the primary key in %s", k.arn, k.mr.primary)
			}
			m := &material{id: id, state: pm.state, associated: now}
			set(m)
			k.materials = append(k.materials, m)
			k.mr.settlePending()
			return map[string]any{"KeyId": k.arn, "KeyMaterialId": id}, nil
		}
		importType = "EXISTING_KEY_MATERIAL"
	}
	if importType == "NEW_KEY_MATERIAL" {
		if len(k.materials) == 0 {
			m := &material{id: id, state: matCurrent, associated: now}
			set(m)
			k.materials = append(k.materials, m)
			return map[string]any{"KeyId": k.arn, "KeyMaterialId": id}, nil
		}
		if !k.info.Symmetric() {
			return nil, errf(errIncorrectMat, "%s already has key material; only the same material can be re-imported", k.arn)
		}
		if k.materialByID(id) != nil {
			return nil, errf(errIncorrectMat, "This key material is already associated with %s; import it with ImportType EXISTING_KEY_MATERIAL", k.arn)
		}
		if st := k.state(); st != stateEnabled && st != stateDisabled {
			return nil, errf(errInvalidState, "%s is %s; re-import its existing key material before importing new key material", k.arn, st)
		}
		if k.pendingRotation() != nil {
			return nil, errf(errConflict, "%s already has key material in PENDING_ROTATION state", k.arn)
		}
		if !k.rotationStart.IsZero() {
			return nil, errf(errConflict, "%s is being rotated", k.arn)
		}
		m := &material{id: id, state: matPendingRotation, associated: now}
		set(m)
		k.materials = append(k.materials, m)
		if k.mr != nil {
			k.mr.settlePending() // PENDING_MULTI_REGION_IMPORT_AND_ROTATION while a replica lacks it
		}
		return map[string]any{"KeyId": k.arn, "KeyMaterialId": id}, nil
	}
	// EXISTING_KEY_MATERIAL: the same bytes as an associated material.
	var target *material
	if req.KeyMaterialId != "" {
		target = k.materialByID(req.KeyMaterialId)
		if target == nil {
			return nil, errf(errNotFound, "Key material %s is not associated with %s", req.KeyMaterialId, k.arn)
		}
		if target.id != id {
			clear(raw)
			return nil, errf(errIncorrectMat, "The key material does not match key material %s of %s", req.KeyMaterialId, k.arn)
		}
	} else {
		target = k.current()
		if target == nil {
			return nil, errf(errIncorrectMat, "%s has no key material to re-import", k.arn)
		}
		if target.id != id || (target.imported && subtle.ConstantTimeCompare(target.raw, raw) != 1) {
			clear(raw)
			return nil, errf(errIncorrectMat, "The key material does not match the key material previously imported into %s", k.arn)
		}
	}
	if target.imported && !bytes.Equal(target.raw, raw) {
		clear(raw)
		return nil, errf(errIncorrectMat, "The key material does not match the key material previously imported into %s", k.arn)
	}
	set(target)
	if k.mr != nil {
		k.mr.settlePending()
	}
	return map[string]any{"KeyId": k.arn, "KeyMaterialId": target.id}, nil
}

func (s *Server) deleteImportedKeyMaterial(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId         string
		KeyMaterialId string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if k.origin != originExternal {
		return nil, errf(errUnsupported, "%s origin is %s; DeleteImportedKeyMaterial needs an EXTERNAL key", k.arn, k.origin)
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if req.KeyMaterialId != "" && !k.info.Symmetric() {
		return nil, errf(errValidation, "KeyMaterialId is only valid for symmetric encryption keys")
	}
	var m *material
	if req.KeyMaterialId != "" {
		if m = k.materialByID(req.KeyMaterialId); m == nil {
			return nil, errf(errNotFound, "Key material %s is not associated with %s", req.KeyMaterialId, k.arn)
		}
	} else if m = k.current(); m == nil {
		return nil, errf(errInvalidState, "%s has no imported key material", k.arn)
	}
	if pendingState(m.state) {
		if !k.rotationStart.IsZero() {
			return nil, errf(errConflict, "%s is being rotated", k.arn)
		}
		k.dropMaterial(m)
		// DeleteImportedKeyMaterial: deleting a primary's pending material
		// deletes the replicas' too; a replica's deletion leaves the others.
		if k.mr != nil && !k.isReplica(s.opts.Region) {
			for _, r := range k.mr.replicaRegions() {
				if rm := k.mr.members[r].materialByID(m.id); rm != nil {
					k.mr.members[r].dropMaterial(rm)
				}
			}
		}
	}
	if m.raw != nil {
		clear(m.raw)
	}
	m.raw, m.parsed, m.imported = nil, nil, false
	if k.mr != nil {
		k.mr.settlePending()
	}
	return map[string]any{"KeyId": k.arn, "KeyMaterialId": m.id}, nil
}

// dropMaterial removes m from k's materials and forgets its bytes.
func (k *key) dropMaterial(m *material) {
	for i, x := range k.materials {
		if x == m {
			k.materials = append(k.materials[:i], k.materials[i+1:]...)
			break
		}
	}
	clear(m.raw)
	m.raw, m.parsed, m.imported = nil, nil, false
}
