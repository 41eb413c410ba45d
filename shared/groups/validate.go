package groups

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"unicode/utf8"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// maxPolicyBytes is KMS's key policy size limit (32 KB).
const maxPolicyBytes = 32 * 1024

// maxDescription is KMS's key description limit.
const maxDescription = 8192

var knownUsages = []keyspec.Usage{keyspec.EncryptDecrypt, keyspec.SignVerify, keyspec.GenerateVerifyMAC, keyspec.KeyAgreement}

// validate applies the built-in defaults into cfg and reports every problem.
func validate(cfg *Config, p *problems, d *decoder, inherited []map[string]bool, policies *policyReader) {
	if cfg.Version != CurrentVersion {
		if cfg.Version == 0 {
			p.addf("version", "required: %d", CurrentVersion)
		} else {
			p.addf("version", "unsupported version %d (this keyferry reads version %d)", cfg.Version, CurrentVersion)
		}
	}
	normalizeGroup(&cfg.Defaults)
	if cfg.Defaults.Name != "" {
		p.addf("defaults.name", "cannot be set in defaults: every group needs its own unique name")
	}
	if cfg.ControlPlane.SigningKeyAlias == "" {
		cfg.ControlPlane.SigningKeyAlias = DefaultSigningKeyAlias
	} else if err := CheckAlias(cfg.ControlPlane.SigningKeyAlias); err != nil {
		p.addf("control_plane.signing_key_alias", "%v", err)
	}
	pools := validatePools(cfg, p)
	if len(cfg.Groups) == 0 {
		p.addf("groups", "at least one group is required")
	}
	names := map[string]int{}
	aliases := map[string]int{}
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		path := joinIndex("groups", i)
		gv := &groupValidator{
			p: p, path: path, g: g,
			present:   d.present[path],
			inherited: inherited[i],
			alarmKeys: d.present,
		}
		gv.run(pools, policies)
		if g.Name != "" {
			if j, dup := names[g.Name]; dup {
				p.addf(path+".name", "duplicate of groups[%d]", j)
			} else {
				names[g.Name] = i
			}
		}
		if g.Alias != "" {
			if g.Alias == cfg.ControlPlane.SigningKeyAlias {
				gv.addf("alias", "%s is the control-plane signing key alias", g.Alias)
			}
			k := g.Account + "\x00" + g.Region + "\x00" + g.Alias
			if j, dup := aliases[k]; dup {
				gv.addf("alias", "%s is already used by groups[%d] in account %s region %s", g.Alias, j, g.Account, g.Region)
			} else {
				aliases[k] = i
			}
		}
	}
}

func validatePools(cfg *Config, p *problems) map[string]bool {
	pools := map[string]bool{}
	agents := map[string]string{}
	if len(cfg.HSMPools) == 0 {
		cfg.HSMPools = nil
	}
	for i := range cfg.HSMPools {
		pool := &cfg.HSMPools[i]
		path := joinIndex("hsm_pools", i)
		if err := CheckName(pool.Name); err != nil {
			p.addf(path+".name", "%v", err)
		} else if pools[pool.Name] {
			p.addf(path+".name", "duplicate pool name %q", pool.Name)
		}
		pools[pool.Name] = true
		if len(pool.Agents) == 0 {
			pool.Agents = nil
		}
		for j := range pool.Agents {
			a := &pool.Agents[j]
			apath := joinIndex(path+".agents", j)
			if a.ID == "" {
				p.addf(apath+".id", "required")
			} else if !agentRe.MatchString(a.ID) {
				p.addf(apath+".id", "%q is not an agent id (A-Z a-z 0-9 . _ -, 1-64 characters)", a.ID)
			} else if prev, dup := agents[a.ID]; dup {
				p.addf(apath+".id", "duplicate of %s", prev)
			} else {
				agents[a.ID] = apath
			}
			if a.PublicKey != "" {
				if _, err := ParseAgentPublicKey(a.PublicKey); err != nil {
					p.addf(apath+".public_key", "%v", err)
				}
			}
		}
	}
	return pools
}

// normalizeGroup turns empty collections into nil so that a Config compares
// equal after a marshal round trip.
func normalizeGroup(g *Group) {
	if len(g.UserTags) == 0 {
		g.UserTags = nil
	}
	if len(g.Alarms) == 0 {
		g.Alarms = nil
	}
}

type groupValidator struct {
	p         *problems
	path      string
	g         *Group
	present   map[string]bool
	inherited map[string]bool
	// alarmKeys is the decoder's present map, keyed by path.
	alarmKeys map[string]map[string]bool
}

// addf reports a problem on field, noting when its value came from defaults.
func (v *groupValidator) addf(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if v.inherited[field] {
		msg += " (value from defaults)"
	}
	v.p.addf(v.path+"."+field, "%s", msg)
}

// explicit reports whether the group itself (not defaults) sets field.
func (v *groupValidator) explicit(field string) bool {
	return v.present[field] && !v.inherited[field]
}

func (v *groupValidator) run(pools map[string]bool, policies *policyReader) {
	g := v.g
	normalizeGroup(g)
	if err := CheckName(g.Name); err != nil {
		v.addf("name", "%v", err)
	}

	var info *keyspec.Info
	if g.KeySpec == "" {
		v.addf("key_spec", "required: one of %v", keyspec.All())
	} else if i, err := keyspec.Lookup(g.KeySpec); err != nil {
		v.addf("key_spec", "%q is not an importable key spec (one of %v)", g.KeySpec, keyspec.All())
	} else {
		info = &i
	}

	switch {
	case g.KeyUsage == "" && info != nil:
		g.KeyUsage = info.Usages[0]
	case g.KeyUsage == "":
	case !slices.Contains(knownUsages, g.KeyUsage):
		v.addf("key_usage", "%q is not a KMS key usage (one of %v)", g.KeyUsage, knownUsages)
	case info != nil && !info.AllowsUsage(g.KeyUsage):
		v.addf("key_usage", "%s is not a legal key usage for %s (legal: %v)", g.KeyUsage, g.KeySpec, info.Usages)
	}

	modeOK := true
	if g.Mode == "" {
		g.Mode = ModeAliasSwap
	}
	switch {
	case !slices.Contains(Modes(), g.Mode):
		modeOK = false
		v.addf("mode", "%q is not one of %v", g.Mode, Modes())
	case g.Mode.UsesRotationCap() && info != nil && !info.Symmetric():
		v.addf("mode", "%s works only for SYMMETRIC_DEFAULT keys (KMS rotates imported material in place only for symmetric keys); %s needs alias-swap", g.Mode, g.KeySpec)
	}

	if err := CheckSchedule(g.Schedule); err != nil {
		var multi interface{ Unwrap() []error }
		if errors.As(err, &multi) {
			for _, e := range multi.Unwrap() {
				v.addf("schedule", "%v", e)
			}
		} else {
			v.addf("schedule", "%v", err)
		}
	}
	if g.ScheduleTimezone == "" {
		g.ScheduleTimezone = DefaultTimezone
	} else if err := CheckTimezone(g.ScheduleTimezone); err != nil {
		v.addf("schedule_timezone", "%v", err)
	}

	if err := CheckAlias(g.Alias); err != nil {
		v.addf("alias", "%v", err)
	}
	if n := utf8.RuneCountInString(g.Description); n > maxDescription {
		v.addf("description", "%d characters, KMS allows %d", n, maxDescription)
	} else if !utf8.ValidString(g.Description) {
		v.addf("description", "not valid UTF-8")
	}
	v.checkTags()

	if g.PolicyFile == "" {
		v.addf("policy_file", "required: path of the key policy JSON, relative to this file")
	} else if policies != nil {
		r := policies.read(g.PolicyFile)
		if r.err != nil {
			v.addf("policy_file", "%v", r.err)
		} else {
			g.PolicyPath, g.Policy = r.path, r.doc
		}
	}
	if err := CheckAccount(g.Account); err != nil {
		v.addf("account", "%v", err)
	}
	if err := CheckRegion(g.Region); err != nil {
		v.addf("region", "%v", err)
	}
	v.checkExpiration()

	if modeOK && g.Mode.CreatesKeys() {
		if g.PreviousKey == "" {
			g.PreviousKey = PreviousKeep
		} else if g.PreviousKey != PreviousKeep && g.PreviousKey != PreviousDisable {
			v.addf("previous_key", "%q is not keep or disable", g.PreviousKey)
		}
	} else if modeOK {
		if v.explicit("previous_key") {
			v.addf("previous_key", "applies to alias-swap and hybrid groups only; %s keeps one key", g.Mode)
		}
		g.PreviousKey = ""
	}

	if g.HSMPool == "" {
		v.addf("hsm_pool", "required: the name of a pool under hsm_pools")
	} else if !pools[g.HSMPool] {
		v.addf("hsm_pool", "%q is not defined under hsm_pools", g.HSMPool)
	}

	if g.Wrapping.Algorithm == "" {
		g.Wrapping.Algorithm = AutoAlgorithm
	}
	if g.Wrapping.KeySpec == "" {
		g.Wrapping.KeySpec = AutoKeySpec
	}
	checkWrapping(v.p, v.path+".wrapping", g.Wrapping, g.KeySpec, info != nil)

	if modeOK && g.Mode.UsesRotationCap() {
		if !v.present["rotation_cap"] {
			g.RotationCap = DefaultRotationCap
		}
		if g.RotationCap < 1 || g.RotationCap > 100 {
			v.addf("rotation_cap", "must be 1-100, got %d", g.RotationCap)
		}
	} else if modeOK {
		if v.explicit("rotation_cap") {
			v.addf("rotation_cap", "applies to in-place and hybrid groups only")
		}
		g.RotationCap = 0
	}

	v.checkAlarms(info)
}

func (v *groupValidator) checkTags() {
	g := v.g
	probs := tagProblems(g.UserTags)
	keys := make([]string, 0, len(probs))
	for k := range probs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, m := range probs[k] {
			v.p.addf(joinKey(v.path+".tags", k), "%s", m)
		}
	}
	if len(g.UserTags) > maxUserTags {
		v.addf("tags", "%d tags; KMS allows 50 per key and keyferry adds %s", len(g.UserTags), GroupTagKey)
	}
}

func (v *groupValidator) checkExpiration() {
	g := v.g
	if !v.present["material_expiration"] {
		g.MaterialExpiration = Expiration{Never: true}
	}
	if g.MaterialExpiration.Never {
		if v.explicit("reimport_margin") {
			v.addf("reimport_margin", "applies only when material_expiration is a duration (material here never expires)")
		}
		g.ReimportMargin = 0
		return
	}
	validFor := g.MaterialExpiration.ValidFor.Std()
	if validFor <= 0 || validFor > MaxValidFor {
		v.addf("material_expiration", `must be "never" or a duration > 0 and <= 365d (KMS ValidTo limit), got %s`, g.MaterialExpiration)
		return
	}
	defaulted := !v.present["reimport_margin"]
	if defaulted {
		g.ReimportMargin = Duration(DefaultReimportMargin)
	}
	switch m := g.ReimportMargin.Std(); {
	case m <= 0:
		v.addf("reimport_margin", "must be > 0, got %s", g.ReimportMargin)
	case m >= validFor && defaulted:
		v.addf("reimport_margin", "the default %s must be shorter than material_expiration %s; set reimport_margin", g.ReimportMargin, g.MaterialExpiration)
	case m >= validFor:
		v.addf("reimport_margin", "%s must be shorter than material_expiration %s", g.ReimportMargin, g.MaterialExpiration)
	}
}

func (v *groupValidator) checkAlarms(info *keyspec.Info) {
	g := v.g
	names := map[string]int{}
	for i := range g.Alarms {
		a := &g.Alarms[i]
		path := joinIndex(v.path+".alarms", i)
		// present keys of an alarm are recorded under its path by the decoder.
		alarmDefaults(a, v.alarmPresent(path))
		checkAlarm(v.p, path, a, info, g.KeyUsage, v.alarmPresent(path))
		if a.Name != "" {
			if j, dup := names[a.Name]; dup {
				v.p.addf(path+".name", "duplicate of alarms[%d]", j)
			} else {
				names[a.Name] = i
			}
		}
	}
}

// alarmPresent returns the keys written for the alarm at path.
func (v *groupValidator) alarmPresent(path string) map[string]bool {
	return v.alarmKeys[path]
}

// policyReader reads and checks policy files relative to the config file.
type policyReader struct {
	dir   string
	cache map[string]policyResult
}

type policyResult struct {
	path string
	doc  json.RawMessage
	err  error
}

func (r *policyReader) read(name string) policyResult {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.dir, path)
	}
	path = filepath.Clean(path)
	if res, ok := r.cache[path]; ok {
		return res
	}
	res := policyResult{path: path}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.err = fmt.Errorf("%s does not exist", path)
	case err != nil:
		res.err = fmt.Errorf("cannot read %s: %w", path, err)
	case len(data) > maxPolicyBytes:
		res.err = fmt.Errorf("%s is %d bytes; KMS key policies are at most %d", path, len(data), maxPolicyBytes)
	default:
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			res.err = fmt.Errorf("%s is not a JSON object: %w", path, err)
		} else if _, ok := doc["Statement"]; !ok {
			res.err = fmt.Errorf("%s is not a key policy (no Statement)", path)
		} else {
			res.doc = json.RawMessage(data)
		}
	}
	r.cache[path] = res
	return res
}
