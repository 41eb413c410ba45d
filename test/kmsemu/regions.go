package kmsemu

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/keyferry/keyferry/shared/kmsregions"
)

// Several regions from one process. The root server (New) answers every
// request; the region a request is for is the one its SigV4 credential
// scope names (Credential=AKID/DATE/REGION/kms/aws4_request), as AWS
// routes by endpoint and refuses a signature scoped to another region.
// Each region has its own keys, aliases, import tokens and quota buckets;
// the clock, the wrapping-key pool, the log and the mutex are shared.
//
// Multi-Region keys, as the KMS API reference (botocore's service model
// 2014-11-01, shipped with the AWS CLI here) and the developer guide
// (https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-import.html)
// describe them:
//   - CreateKey MultiRegion=true makes a primary whose key id starts with
//     mrk-; ReplicateKey (called in the primary's region) makes a replica
//     with the same key id, spec, usage and origin in another region of the
//     same partition; one replica per region (AlreadyExistsException).
//   - "If you replicate a multi-Region primary key with imported key
//     material, the replica key is created with no key material. You must
//     import the same key material that you imported into the primary key."
//     Each key has its own GetParametersForImport (tokens are per key and
//     region) and its own expiration; "the key states of related
//     multi-Region keys are independent of each other".
//   - New material: ImportKeyMaterial NEW_KEY_MATERIAL on the primary (state
//     PENDING_MULTI_REGION_IMPORT_AND_ROTATION while a replica lacks it),
//     the same bytes as EXISTING_KEY_MATERIAL into every replica ("You
//     cannot directly import new key material into the replica Region
//     keys"), then PENDING_ROTATION, then RotateKeyOnDemand on the primary
//     ("You must do this for every replica Region key before you can
//     perform the RotateKeyOnDemand operation on the primary Region key").
//   - DeleteImportedKeyMaterial of a primary's pending material deletes the
//     replicas' copies too; deleting a replica's material leaves the
//     primary and the other replicas unchanged.
//   - A new replica is Creating for a moment ("retry on
//     KMSInvalidStateException or call DescribeKey"): Options.ReplicaCreating.
// Not emulated: UpdatePrimaryRegion, PendingReplicaDeletion (scheduling
// the deletion of a primary that has replicas is refused with a message).

// mrKey is what related multi-Region keys share: the key id, the primary's
// region and every member by region.
type mrKey struct {
	id      string
	primary string
	members map[string]*key
}

type mrKeyRef struct {
	Arn    string `json:"Arn"`
	Region string `json:"Region"`
}

type mrConfig struct {
	MultiRegionKeyType string     `json:"MultiRegionKeyType"`
	PrimaryKey         *mrKeyRef  `json:"PrimaryKey,omitempty"`
	ReplicaKeys        []mrKeyRef `json:"ReplicaKeys"`
}

func (g *mrKey) replicaRegions() []string {
	var out []string
	for r := range g.members {
		if r != g.primary {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

func (g *mrKey) config(k *key) *mrConfig {
	c := &mrConfig{MultiRegionKeyType: "REPLICA", ReplicaKeys: []mrKeyRef{}}
	if g.members[g.primary] == k {
		c.MultiRegionKeyType = "PRIMARY"
	}
	if p := g.members[g.primary]; p != nil {
		c.PrimaryKey = &mrKeyRef{Arn: p.arn, Region: g.primary}
	}
	for _, r := range g.replicaRegions() {
		c.ReplicaKeys = append(c.ReplicaKeys, mrKeyRef{Arn: g.members[r].arn, Region: r})
	}
	return c
}

// isReplica reports whether k is a multi-Region replica in region.
func (k *key) isReplica(region string) bool { return k.mr != nil && k.mr.primary != region }

// primaryOf returns the primary of a replica (nil when it was deleted).
func (k *key) primaryOf() *key {
	if k.mr == nil {
		return nil
	}
	return k.mr.members[k.mr.primary]
}

func (k *key) leaveMultiRegion(region string) {
	if k.mr != nil && k.mr.members[region] == k {
		delete(k.mr.members, region)
	}
}

func (k *key) primaryWithReplicas(region string) *Error {
	if k.mr == nil || k.mr.primary != region {
		return nil
	}
	// AWS puts such a primary in PendingReplicaDeletion until its replicas
	// are deleted. kmsemu does not emulate that state: it schedules the
	// primary's deletion once every replica's is scheduled, and refuses it
	// while a replica is not.
	var live []string
	for _, r := range k.mr.replicaRegions() {
		if k.mr.members[r].deletionDate.IsZero() {
			live = append(live, r)
		}
	}
	if len(live) > 0 {
		return errf(errInvalidState, "%s is a multi-Region primary key with replicas in %s; kmsemu does not emulate PendingReplicaDeletion: schedule the deletion of the replicas first", k.arn, strings.Join(live, ", "))
	}
	return nil
}

func pendingState(st string) bool { return st == matPendingRotation || st == matPendingMR }

// settlePending moves the primary's new material from
// PENDING_MULTI_REGION_IMPORT_AND_ROTATION to PENDING_ROTATION once every
// replica has imported it, and back when a replica lost it. Caller holds mu.
func (g *mrKey) settlePending() {
	p := g.members[g.primary]
	if p == nil {
		return
	}
	m := p.pendingRotation()
	if m == nil {
		return
	}
	all := true
	for _, r := range g.replicaRegions() {
		rm := g.members[r].materialByID(m.id)
		if rm == nil || !rm.imported {
			all = false
			break
		}
	}
	st := matPendingMR
	if all {
		st = matPendingRotation
	}
	m.state = st
	for _, r := range g.replicaRegions() {
		if rm := g.members[r].materialByID(m.id); rm != nil {
			rm.state = st
		}
	}
}

// missingPending lists the replica regions that have not imported the
// primary's pending material.
func (g *mrKey) missingPending(id string) []string {
	var out []string
	for _, r := range g.replicaRegions() {
		if rm := g.members[r].materialByID(id); rm == nil || !rm.imported {
			out = append(out, r)
		}
	}
	return out
}

func newMRKID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("kmsemu: crypto/rand failed"))
	}
	return "mrk-" + hex.EncodeToString(b[:])
}

var scopeRE = regexp.MustCompile(`Credential=[^/,\s]+/\d{8}/([^/,\s]+)/kms/aws4_request`)

// regionOf returns the server of the region the Authorization header's
// credential scope names; a header without a readable scope is the root's
// region. Called on the root without mu held.
func (s *Server) regionOf(auth string) (*Server, *Error) {
	m := scopeRE.FindStringSubmatch(auth)
	if m == nil || m[1] == s.opts.Region {
		return s, nil
	}
	if !kmsregions.Known(m[1]) {
		return nil, &Error{Type: "InvalidSignatureException", Message: "Credential should be scoped to a valid region, not '" + m[1] + "'. ", Status: 400}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.region(m[1]), nil
}

// region returns the server of name, creating it on first use. Caller holds mu.
func (s *Server) region(name string) *Server {
	root := s.root
	if rs, ok := root.regions[name]; ok {
		return rs
	}
	opts := root.opts
	opts.Region = name
	rs := &Server{
		opts: opts, mu: root.mu, clock: root.clock, limiter: newLimiter(opts.QuotaScale, nil), log: root.log.With("region", name),
		pool: root.pool, keys: map[string]*key{}, aliases: map[string]*alias{}, tokens: map[string]*importParams{},
		root: root,
	}
	root.regions[name] = rs
	return rs
}

// sortedRegions returns the root's region servers, the root's own first.
func (s *Server) sortedRegions() []*Server {
	root := s.root
	names := make([]string, 0, len(root.regions))
	for n := range root.regions {
		if n != root.opts.Region {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := []*Server{root}
	for _, n := range names {
		out = append(out, root.regions[n])
	}
	return out
}

// tickAll applies what became due in every region. Caller holds mu.
func (s *Server) tickAll(now time.Time) {
	for _, rs := range s.sortedRegions() {
		rs.tick(now)
	}
}

// Regions returns the names of the regions served so far (the configured
// one first, then the others in order).
func (s *Server) Regions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, rs := range s.sortedRegions() {
		out = append(out, rs.opts.Region)
	}
	return out
}

func init() {
	register("ReplicateKey", (*Server).replicateKey)
	quotas["ReplicateKey"] = quotaGroup{"ReplicateKey", 5}
}

// replicateKey creates a replica of a multi-Region primary in ReplicaRegion.
// AWS records it as ReplicateKey here and CreateKey in the replica's region,
// and "KMS pricing and quotas for KMS keys apply to each primary key and
// replica key": the replica region's CreateKey bucket is drawn too.
func (s *Server) replicateKey(now time.Time, body []byte) (any, *Error) {
	var req struct {
		KeyId                          string
		ReplicaRegion                  string
		Policy                         *string
		BypassPolicyLockoutSafetyCheck bool
		Description                    string
		Tags                           []tag
	}
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.ReplicaRegion == "" {
		return nil, errf(errValidation, "1 validation error detected: Value null at 'replicaRegion' failed to satisfy constraint: Member must not be null")
	}
	k, e := s.resolveKey(req.KeyId, false)
	if e != nil {
		return nil, e
	}
	if k.mr == nil {
		return nil, errf(errUnsupported, "%s is not a multi-Region key; only a multi-Region primary key can be replicated", k.arn)
	}
	if k.isReplica(s.opts.Region) {
		return nil, errf(errUnsupported, "%s is a multi-Region replica key; replicate its primary key in %s", k.arn, k.mr.primary)
	}
	if e := k.notPendingDeletion(); e != nil {
		return nil, e
	}
	if err := kmsregions.CheckReplica(s.opts.Region, req.ReplicaRegion); err != nil {
		return nil, errf(errValidation, "ReplicaRegion: %v", err)
	}
	rs := s.region(req.ReplicaRegion)
	if _, ok := rs.keys[k.id]; ok {
		return nil, errf(errAlreadyExists, "Replica key %skey/%s already exists", rs.arnPrefix(), k.id)
	}
	if len(req.Description) > 8192 {
		return nil, errf(errValidation, "Description is longer than 8192 characters")
	}
	policy := rs.defaultPolicy()
	if req.Policy != nil {
		if e := validatePolicy(*req.Policy); e != nil {
			return nil, e
		}
		policy = *req.Policy
	}
	if e := validateTags(req.Tags); e != nil {
		return nil, e
	}
	if !rs.limiter.allow("CreateKey") {
		return nil, errf(errLimitExceeded, "CreateKey request rate exceeded in %s", req.ReplicaRegion)
	}
	r := &key{
		id: k.id, arn: rs.arnPrefix() + "key/" + k.id, spec: k.spec, info: k.info, usage: k.usage,
		origin: k.origin, description: req.Description, policy: policy, tags: map[string]string{},
		created: now, enabled: true, mr: k.mr, rotations: append([]rotation(nil), k.rotations...),
	}
	for _, t := range req.Tags {
		r.tags[t.TagKey] = t.TagValue
	}
	// The replica is associated with the primary's permanently associated
	// materials; imported ones arrive without material (PENDING_IMPORT).
	for _, m := range k.materials {
		if pendingState(m.state) {
			continue
		}
		rm := &material{id: m.id, state: m.state, associated: now}
		if k.origin != originExternal {
			rm.raw, rm.parsed, rm.imported = append([]byte(nil), m.raw...), m.parsed, true
		}
		r.materials = append(r.materials, rm)
	}
	if d := s.opts.ReplicaCreating; d > 0 {
		r.creatingUntil = now.Add(d)
	}
	k.mr.members[req.ReplicaRegion] = r
	rs.keys[r.id] = r
	rs.order = append(rs.order, r.id)
	k.mr.settlePending()
	tags := []tag{}
	for _, t := range req.Tags {
		tags = append(tags, t)
	}
	return map[string]any{"ReplicaKeyMetadata": r.metadata(s.opts.Account), "ReplicaPolicy": policy, "ReplicaTags": tags}, nil
}
