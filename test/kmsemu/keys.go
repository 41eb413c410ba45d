package kmsemu

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// Key states as KMS names them.
const (
	stateEnabled         = "Enabled"
	stateDisabled        = "Disabled"
	statePendingDeletion = "PendingDeletion"
	statePendingImport   = "PendingImport"
	// stateCreating is a new replica key's transient state (ReplicateKey:
	// "the new replica key has a transient key state of Creating").
	stateCreating = "Creating"
)

// Key material states and import states (ListKeyRotations).
const (
	matCurrent         = "CURRENT"
	matNonCurrent      = "NON_CURRENT"
	matPendingRotation = "PENDING_ROTATION"
	// matPendingMR is new material of a multi-Region primary that some
	// replica has not yet imported (KMS API reference, RotationsListEntry:
	// "imported into the primary Region key but not all of the replica
	// Region keys. When this key material is imported in to all of the
	// replica Region keys, the key material state will change to
	// PENDING_ROTATION").
	matPendingMR       = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
	importImported     = "IMPORTED"
	importPending      = "PENDING_IMPORT"
	expiresModel       = "KEY_MATERIAL_EXPIRES"
	doesNotExpireModel = "KEY_MATERIAL_DOES_NOT_EXPIRE"
)

type key struct {
	id, arn     string
	spec        keyspec.Spec
	info        keyspec.Info
	usage       keyspec.Usage
	origin      string
	description string
	policy      string
	tags        map[string]string
	created     time.Time

	enabled      bool      // the customer's enabled flag
	deletionDate time.Time // non-zero while PendingDeletion

	materials []*material // association order
	rotations []rotation  // completed on-demand rotations, oldest first

	rotationStart time.Time // non-zero while an on-demand rotation runs
	rotationDone  time.Time

	mr            *mrKey    // non-nil for a multi-Region primary or replica (regions.go)
	creatingUntil time.Time // non-zero while a new replica is Creating
}

type material struct {
	id          string
	raw         []byte // as imported/generated, for re-import comparison
	parsed      *parsedMaterial
	state       string // CURRENT, NON_CURRENT, PENDING_ROTATION
	imported    bool
	model       string // expiration model (EXTERNAL only)
	validTo     time.Time
	description string
	associated  time.Time
}

type rotation struct {
	materialID string
	date       time.Time
}

func (k *key) current() *material {
	for _, m := range k.materials {
		if m.state == matCurrent {
			return m
		}
	}
	return nil
}

// pendingRotation is the material imported for an on-demand rotation that
// has not completed: PENDING_ROTATION, or PENDING_MULTI_REGION_IMPORT_AND_ROTATION
// on a multi-Region key. Neither is permanently associated.
func (k *key) pendingRotation() *material {
	for _, m := range k.materials {
		if pendingState(m.state) {
			return m
		}
	}
	return nil
}

func (k *key) materialByID(id string) *material {
	for _, m := range k.materials {
		if m.id == id {
			return m
		}
	}
	return nil
}

// state derives the KMS key state: any permanently associated material
// (current or old) that is not imported puts the key in PendingImport.
func (k *key) state() string {
	if !k.deletionDate.IsZero() {
		return statePendingDeletion
	}
	if !k.creatingUntil.IsZero() {
		return stateCreating
	}
	if k.current() == nil {
		return statePendingImport
	}
	for _, m := range k.materials {
		if !pendingState(m.state) && !m.imported {
			return statePendingImport
		}
	}
	if k.enabled {
		return stateEnabled
	}
	return stateDisabled
}

// usable checks the key can be used in a cryptographic operation.
func (k *key) usable() *Error {
	switch st := k.state(); st {
	case stateEnabled:
		return nil
	case stateDisabled:
		return errf(errDisabled, "%s is disabled.", k.arn)
	default:
		return errf(errInvalidState, "%s is %s and not usable.", k.arn, st)
	}
}

// notPendingDeletion is the precondition of most management operations.
func (k *key) notPendingDeletion() *Error {
	if !k.deletionDate.IsZero() {
		return errf(errInvalidState, "%s is pending deletion.", k.arn)
	}
	return nil
}

// tick applies everything that became due on the emulator clock. Caller holds s.mu.
func (s *Server) tick(now time.Time) {
	for _, id := range append([]string(nil), s.order...) {
		k := s.keys[id]
		if !k.deletionDate.IsZero() && !now.Before(k.deletionDate) {
			s.deleteKey(k)
			continue
		}
		for _, m := range k.materials {
			if m.imported && m.model == expiresModel && !m.validTo.IsZero() && !now.Before(m.validTo) {
				m.imported = false
				clear(m.raw)
				m.parsed, m.raw = nil, nil
				s.log.Info("key material expired", "key", k.id, "key_material_id", m.id)
			}
		}
		if !k.rotationStart.IsZero() && !now.Before(k.rotationDone) {
			s.completeRotation(k, k.rotationDone)
		}
		if !k.creatingUntil.IsZero() && !now.Before(k.creatingUntil) {
			k.creatingUntil = time.Time{}
		}
	}
	for tok, p := range s.tokens {
		if now.After(p.validTo.Add(time.Hour)) {
			delete(s.tokens, tok)
		}
	}
}

func (s *Server) deleteKey(k *key) {
	k.leaveMultiRegion(s.opts.Region)
	delete(s.keys, k.id)
	for i, id := range s.order {
		if id == k.id {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
	for name, a := range s.aliases {
		if a.target == k.id {
			delete(s.aliases, name)
		}
	}
	s.log.Info("key deleted", "key", k.id)
}

// uuidRE matches a key id: a UUID, or mrk- and 32 hex digits for a
// multi-Region key (the same id in every Region of the key).
var uuidRE = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)

func (s *Server) arnPrefix() string {
	return "arn:aws:kms:" + s.opts.Region + ":" + s.opts.Account + ":"
}

// resolveKey finds a key by key id or key ARN, and by alias name or alias
// ARN when allowAlias (the operations where AWS accepts aliases).
func (s *Server) resolveKey(id string, allowAlias bool) (*key, *Error) {
	if id == "" {
		return nil, errf(errValidation, "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	if len(id) > 2048 {
		return nil, errf(errValidation, "keyId is longer than 2048 characters")
	}
	name := id
	if rest, ok := strings.CutPrefix(id, s.arnPrefix()); ok {
		name = rest
		if kid, ok := strings.CutPrefix(rest, "key/"); ok {
			name = kid
		} else if !strings.HasPrefix(rest, "alias/") {
			return nil, errf(errNotFound, "Invalid arn %s", id)
		}
	} else if strings.HasPrefix(id, "arn:") {
		return nil, errf(errNotFound, "Invalid arn %s", id)
	}
	if strings.HasPrefix(name, "alias/") {
		if !allowAlias {
			return nil, errf(errNotFound, "Invalid keyId %s", id)
		}
		a, ok := s.aliases[name]
		if !ok {
			return nil, errf(errNotFound, "Alias %s%s is not found.", s.arnPrefix(), name)
		}
		name = a.target
	}
	if !uuidRE.MatchString(name) {
		return nil, errf(errNotFound, "Invalid keyId %s", id)
	}
	k, ok := s.keys[name]
	if !ok {
		return nil, errf(errNotFound, "Key '%skey/%s' does not exist", s.arnPrefix(), name)
	}
	return k, nil
}

// ---- algorithm lists ----

func signingAlgorithms(info keyspec.Info) []string {
	switch info.Family {
	case keyspec.FamilyRSA:
		return []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}
	case keyspec.FamilyECC:
		switch info.Curve {
		case "P-384":
			return []string{"ECDSA_SHA_384"}
		case "P-521":
			return []string{"ECDSA_SHA_512"}
		}
		return []string{"ECDSA_SHA_256"}
	}
	return nil
}

func encryptionAlgorithms(info keyspec.Info) []string {
	switch info.Family {
	case keyspec.FamilySymmetric:
		return []string{"SYMMETRIC_DEFAULT"}
	case keyspec.FamilyRSA:
		return []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}
	}
	return nil
}

func macAlgorithms(info keyspec.Info) []string {
	if info.Family == keyspec.FamilyHMAC {
		return []string{"HMAC_SHA_" + strconv.Itoa(info.Bits)}
	}
	return nil
}

// ---- wire types ----

type tag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

type keyMetadata struct {
	AWSAccountID           string    `json:"AWSAccountId"`
	KeyID                  string    `json:"KeyId"`
	Arn                    string    `json:"Arn"`
	CreationDate           *epoch    `json:"CreationDate,omitempty"`
	Enabled                bool      `json:"Enabled"`
	Description            string    `json:"Description"`
	KeyUsage               string    `json:"KeyUsage"`
	KeyState               string    `json:"KeyState"`
	DeletionDate           *epoch    `json:"DeletionDate,omitempty"`
	ValidTo                *epoch    `json:"ValidTo,omitempty"`
	Origin                 string    `json:"Origin"`
	ExpirationModel        string    `json:"ExpirationModel,omitempty"`
	KeyManager             string    `json:"KeyManager"`
	CustomerMasterKeySpec  string    `json:"CustomerMasterKeySpec"`
	KeySpec                string    `json:"KeySpec"`
	EncryptionAlgorithms   []string  `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms      []string  `json:"SigningAlgorithms,omitempty"`
	MacAlgorithms          []string  `json:"MacAlgorithms,omitempty"`
	KeyAgreementAlgorithms []string  `json:"KeyAgreementAlgorithms,omitempty"`
	MultiRegion            bool      `json:"MultiRegion"`
	MultiRegionConfig      *mrConfig `json:"MultiRegionConfiguration,omitempty"`
	CurrentKeyMaterialID   string    `json:"CurrentKeyMaterialId,omitempty"`
}

func (k *key) metadata(account string) keyMetadata {
	md := keyMetadata{
		AWSAccountID: account, KeyID: k.id, Arn: k.arn, CreationDate: tp(k.created),
		Enabled: k.state() == stateEnabled, Description: k.description, KeyUsage: string(k.usage),
		KeyState: k.state(), DeletionDate: tp(k.deletionDate), Origin: k.origin, KeyManager: "CUSTOMER",
		CustomerMasterKeySpec: string(k.spec), KeySpec: string(k.spec),
	}
	// PendingDeletionWindowInDays is only for a multi-Region primary in
	// PendingReplicaDeletion (the emulator refuses to schedule that, see
	// scheduleKeyDeletion); a key pending deletion shows its DeletionDate.
	if k.mr != nil {
		md.MultiRegion = true
		md.MultiRegionConfig = k.mr.config(k)
	}
	switch k.usage {
	case keyspec.EncryptDecrypt:
		md.EncryptionAlgorithms = encryptionAlgorithms(k.info)
	case keyspec.SignVerify:
		md.SigningAlgorithms = signingAlgorithms(k.info)
	case keyspec.GenerateVerifyMAC:
		md.MacAlgorithms = macAlgorithms(k.info)
	case keyspec.KeyAgreement:
		md.KeyAgreementAlgorithms = []string{"ECDH"}
	}
	if cur := k.current(); cur != nil {
		md.CurrentKeyMaterialID = cur.id
		if k.origin == originExternal && cur.imported {
			md.ExpirationModel = cur.model
			if cur.model == expiresModel {
				md.ValidTo = tp(cur.validTo)
			}
		}
	}
	return md
}

const (
	originAWS      = "AWS_KMS"
	originExternal = "EXTERNAL"
)

func (s *Server) defaultPolicy() string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + s.opts.Account + `:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}

func validatePolicy(p string) *Error {
	if len(p) == 0 || len(p) > 32768 {
		return errf(errMalformedPolicy, "policy must be 1..32768 characters")
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(p), &v); err != nil {
		return errf(errMalformedPolicy, "The new key policy will not allow you to update the key policy in the future. (not JSON: %v)", err)
	}
	if _, ok := v["Statement"]; !ok {
		return errf(errMalformedPolicy, "policy has no Statement")
	}
	return nil
}

func validateTags(tags []tag) *Error {
	seen := map[string]bool{}
	for _, t := range tags {
		if len(t.TagKey) < 1 || len(t.TagKey) > 128 || len(t.TagValue) > 256 {
			return errf(errValidation, "tag key must be 1..128 and tag value 0..256 characters")
		}
		if strings.HasPrefix(strings.ToLower(t.TagKey), "aws:") {
			return errf(errTag, "Tag keys beginning with aws: are reserved")
		}
		if seen[t.TagKey] {
			return errf(errTag, "Duplicate tag key %s", t.TagKey)
		}
		seen[t.TagKey] = true
	}
	if len(tags) > 50 {
		return errf(errTag, "too many tags (max 50)")
	}
	return nil
}

// ---- operations ----

func init() {
	register("CreateKey", (*Server).createKey)
	register("DescribeKey", (*Server).describeKey)
	register("ListKeys", (*Server).listKeys)
	register("EnableKey", (*Server).enableKey)
	register("DisableKey", (*Server).disableKey)
	register("ScheduleKeyDeletion", (*Server).scheduleKeyDeletion)
	register("CancelKeyDeletion", (*Server).cancelKeyDeletion)
	register("TagResource", (*Server).tagResource)
	register("UntagResource", (*Server).untagResource)
	register("ListResourceTags", (*Server).listResourceTags)
	register("GetKeyPolicy", (*Server).getKeyPolicy)
	register("PutKeyPolicy", (*Server).putKeyPolicy)
}

func (s *Server) createKey(now time.Time, body []byte) (any, *Error) {
	var req struct {
		KeySpec                        string
		CustomerMasterKeySpec          string
		KeyUsage                       string
		Origin                         string
		Policy                         *string
		Description                    string
		Tags                           []tag
		MultiRegion                    bool
		BypassPolicyLockoutSafetyCheck bool
		CustomKeyStoreId               string
		XksKeyId                       string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.KeySpec != "" && req.CustomerMasterKeySpec != "" {
		return nil, errf(errValidation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request.")
	}
	specName := req.KeySpec
	if specName == "" {
		specName = req.CustomerMasterKeySpec
	}
	if specName == "" {
		specName = string(keyspec.SymmetricDefault)
	}
	info, err := keyspec.Lookup(keyspec.Spec(specName))
	if err != nil {
		return nil, errf(errValidation, "KeySpec %s is not supported by kmsemu: %v", specName, err)
	}
	usage := keyspec.Usage(req.KeyUsage)
	if usage == "" {
		usage = keyspec.EncryptDecrypt
	}
	if !info.AllowsUsage(usage) {
		return nil, errf(errValidation, "KeyUsage %s is not compatible with KeySpec %s", usage, specName)
	}
	origin := req.Origin
	if origin == "" {
		origin = originAWS
	}
	switch origin {
	case originAWS, originExternal:
	case "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE":
		return nil, errf(errUnsupported, "Origin %s is not supported by kmsemu", origin)
	default:
		return nil, errf(errValidation, "1 validation error detected: Value '%s' at 'origin' failed to satisfy constraint: Member must satisfy enum value set: [AWS_CLOUDHSM, EXTERNAL, AWS_KMS, EXTERNAL_KEY_STORE]", origin)
	}
	if req.CustomKeyStoreId != "" || req.XksKeyId != "" {
		return nil, errf(errUnsupported, "custom key stores are not emulated")
	}
	if len(req.Description) > 8192 {
		return nil, errf(errValidation, "Description is longer than 8192 characters")
	}
	policy := s.defaultPolicy()
	if req.Policy != nil {
		if e := validatePolicy(*req.Policy); e != nil {
			return nil, e
		}
		policy = *req.Policy
	}
	if e := validateTags(req.Tags); e != nil {
		return nil, e
	}
	id := newUUID()
	if req.MultiRegion {
		id = newMRKID()
	}
	k := &key{
		id: id, arn: s.arnPrefix() + "key/" + id, spec: info.Spec, info: info, usage: usage,
		origin: origin, description: req.Description, policy: policy, tags: map[string]string{},
		created: now, enabled: true,
	}
	for _, t := range req.Tags {
		k.tags[t.TagKey] = t.TagValue
	}
	if origin == originAWS {
		raw, parsed, err := generateMaterial(info)
		if err != nil {
			return nil, errf("KMSInternalException", "generate key material: %v", err)
		}
		k.materials = append(k.materials, &material{id: materialID(k.id, raw), raw: raw, parsed: parsed, state: matCurrent, imported: true, associated: now})
	}
	if req.MultiRegion {
		k.mr = &mrKey{id: id, primary: s.opts.Region, members: map[string]*key{s.opts.Region: k}}
	}
	s.keys[id] = k
	s.order = append(s.order, id)
	return map[string]any{"KeyMetadata": k.metadata(s.opts.Account)}, nil
}

type keyIDReq struct {
	KeyId string
}

// keyFromBody decodes a request whose only member is KeyId and resolves
// the key it names (aliases too when allowAlias).
func (s *Server) keyFromBody(body []byte, allowAlias bool) (*key, *Error) {
	var req keyIDReq
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	return s.resolveKey(req.KeyId, allowAlias)
}

func (s *Server) describeKey(_ time.Time, body []byte) (any, *Error) {
	k, e := s.keyFromBody(body, true)
	if e != nil {
		return nil, e
	}
	return map[string]any{"KeyMetadata": k.metadata(s.opts.Account)}, nil
}

// page validates Limit/Marker and returns the [start, end) window over n items.
func page(limit *int, marker string, n int) (start, end int, next string, e *Error) {
	l := 100
	if limit != nil {
		l = *limit
		if l < 1 || l > 1000 {
			return 0, 0, "", errf(errValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000", l)
		}
	}
	if marker != "" {
		v, err := strconv.Atoi(marker)
		if err != nil || v < 0 || v > n {
			return 0, 0, "", errf(errInvalidMarker, "Invalid marker %q", marker)
		}
		start = v
	}
	end = start + l
	if end > n {
		end = n
	}
	if end < n {
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

func (s *Server) listKeys(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		Limit  *int
		Marker string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	start, end, next, e := page(req.Limit, req.Marker, len(s.order))
	if e != nil {
		return nil, e
	}
	type entry struct {
		KeyId  string `json:"KeyId"`
		KeyArn string `json:"KeyArn"`
	}
	out := []entry{}
	for _, id := range s.order[start:end] {
		out = append(out, entry{id, s.keys[id].arn})
	}
	resp := map[string]any{"Keys": out, "Truncated": next != ""}
	if next != "" {
		resp["NextMarker"] = next
	}
	return resp, nil
}

func (s *Server) setEnabled(body []byte, enabled bool) (any, *Error) {
	k, e := s.keyFromBody(body, false)
	if e != nil {
		return nil, e
	}
	switch st := k.state(); st {
	case statePendingDeletion, statePendingImport:
		return nil, errf(errInvalidState, "%s is %s", k.arn, st)
	}
	k.enabled = enabled
	return struct{}{}, nil
}

func (s *Server) enableKey(_ time.Time, body []byte) (any, *Error)  { return s.setEnabled(body, true) }
func (s *Server) disableKey(_ time.Time, body []byte) (any, *Error) { return s.setEnabled(body, false) }

func (s *Server) scheduleKeyDeletion(now time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId               string
		PendingWindowInDays *int
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	days := 30
	if req.PendingWindowInDays != nil {
		days = *req.PendingWindowInDays
		if days < 7 || days > 30 {
			return nil, errf(errValidation, "1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30", days)
		}
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if e := k.primaryWithReplicas(s.opts.Region); e != nil {
		return nil, e
	}
	k.deletionDate = now.Add(time.Duration(days) * 24 * time.Hour)
	return map[string]any{"KeyId": k.arn, "DeletionDate": tp(k.deletionDate), "KeyState": statePendingDeletion, "PendingWindowInDays": days}, nil
}

func (s *Server) cancelKeyDeletion(_ time.Time, body []byte) (any, *Error) {
	k, e := s.keyFromBody(body, false)
	if e != nil {
		return nil, e
	}
	if k.deletionDate.IsZero() {
		return nil, errf(errInvalidState, "%s is not pending deletion", k.arn)
	}
	k.deletionDate = time.Time{}
	k.enabled = false // AWS: a key whose deletion is canceled is Disabled
	return map[string]any{"KeyId": k.arn}, nil
}

func (s *Server) tagResource(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId string
		Tags  []tag
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if e := validateTags(req.Tags); e != nil {
		return nil, e
	}
	n := len(k.tags)
	for _, t := range req.Tags {
		if _, ok := k.tags[t.TagKey]; !ok {
			n++
		}
	}
	if n > 50 {
		return nil, errf(errTag, "too many tags (max 50)")
	}
	for _, t := range req.Tags {
		k.tags[t.TagKey] = t.TagValue
	}
	return struct{}{}, nil
}

func (s *Server) untagResource(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId   string
		TagKeys []string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	for _, tk := range req.TagKeys {
		delete(k.tags, tk)
	}
	return struct{}{}, nil
}

func (s *Server) listResourceTags(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId  string
		Limit  *int
		Marker string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	keys := make([]string, 0, len(k.tags))
	for tk := range k.tags {
		keys = append(keys, tk)
	}
	sort.Strings(keys)
	start, end, next, e := page(req.Limit, req.Marker, len(keys))
	if e != nil {
		return nil, e
	}
	out := []tag{}
	for _, tk := range keys[start:end] {
		out = append(out, tag{tk, k.tags[tk]})
	}
	resp := map[string]any{"Tags": out, "Truncated": next != ""}
	if next != "" {
		resp["NextMarker"] = next
	}
	return resp, nil
}

func (s *Server) getKeyPolicy(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId      string
		PolicyName string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if req.PolicyName != "" && req.PolicyName != "default" {
		return nil, errf(errNotFound, "No such policy exists")
	}
	return map[string]any{"Policy": k.policy, "PolicyName": "default"}, nil
}

func (s *Server) putKeyPolicy(_ time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId      string
		PolicyName string
		Policy     string
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if req.PolicyName != "" && req.PolicyName != "default" {
		return nil, errf(errValidation, "PolicyName must be default")
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if e := validatePolicy(req.Policy); e != nil {
		return nil, e
	}
	k.policy = req.Policy
	return struct{}{}, nil
}
