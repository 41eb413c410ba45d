package groups

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/kmsregions"
)

// Multi-Region groups. A group with replicas keeps one multi-Region KMS key:
// the primary in Region, a replica (same key id, same material) in each
// Region of Replicas. KMS facts (KMS API reference, botocore's service
// model 2014-11-01): CreateKey MultiRegion=true makes the primary;
// ReplicateKey makes "a multi-Region replica key ... in a different Region
// of the same Amazon Web Services partition", "you cannot create more than
// one replica of a primary key in any Region"; MultiRegion "cannot change
// ... after you create the KMS key"; ImportKeyMaterial: "You can also import
// key material into a multi-Region key of any supported type".

// MultiRegion reports whether the group's key is multi-Region.
func (g *Group) MultiRegion() bool { return len(g.Replicas) > 0 }

// Regions returns the primary's Region followed by the replicas'.
func (g *Group) Regions() []string { return append([]string{g.Region}, g.Replicas...) }

func (v *groupValidator) checkReplicas(info *keyspec.Info) {
	g := v.g
	if len(g.Replicas) == 0 {
		g.Replicas = nil
		return
	}
	seen := map[string]bool{}
	for i, r := range g.Replicas {
		field := fmt.Sprintf("replicas[%d]", i)
		if v.inherited["replicas"] {
			v.inherited[field] = true
		}
		switch {
		case seen[r]:
			v.addf(field, "%s is listed twice; KMS keeps at most one replica of a key per Region", r)
		case r == g.Region:
			v.addf(field, "%s is the group's own region (the primary key's); a replica must be in another Region", r)
		case !kmsregions.Known(r):
			v.addf(field, "%q is not a Region KMS is offered in (one of %s)", r, strings.Join(kmsregions.All(), ", "))
		case kmsregions.Known(g.Region):
			if err := kmsregions.CheckReplica(g.Region, r); err != nil {
				v.addf(field, "%v", err)
			}
		}
		seen[r] = true
	}
	if info != nil {
		if err := keyspec.CheckMultiRegion(info.Spec); err != nil {
			v.addf("replicas", "%v", err)
		}
	}
}

// MultiRegionKey reports whether a key ARN names a multi-Region key (its
// key id starts with "mrk-", KMS's multi-Region key id prefix).
func MultiRegionKey(arn string) bool {
	_, id, _ := strings.Cut(arn, ":key/")
	return strings.HasPrefix(id, "mrk-")
}

// CheckReplicasAgainstKeys reports the groups of cfg whose replicas cannot
// be served by the group's current KMS key: current returns a group's
// current key ARN (false when the group has none yet). A single-Region key
// can never gain replicas (MultiRegion is fixed at CreateKey), so an
// in-place or hybrid group would keep rotating a key without them; an
// alias-swap group gets a multi-Region key at its next rotation, which is
// fine. It changes nothing; the result is a *ValidationError or nil.
func CheckReplicasAgainstKeys(cfg *Config, current func(group string) (string, bool)) error {
	var p problems
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		if !g.MultiRegion() {
			continue
		}
		arn, ok := current(g.Name)
		if !ok || MultiRegionKey(arn) {
			continue
		}
		if g.Mode == ModeAliasSwap {
			continue
		}
		p.addf(fmt.Sprintf("groups[%d].replicas", i),
			"group %s's current key %s is single-Region and KMS cannot add replicas to it (MultiRegion is fixed when a key is created); "+
				"%s rotation keeps that key. Set mode: alias-swap: its next rotation creates a new multi-Region key with these replicas (run `keyferry rotate %s` to do it now), "+
				"or remove replicas", g.Name, arn, g.Mode, g.Name)
	}
	return p.err()
}

// ReplicaRegionsFor returns the replica Regions the group's key should have
// that have is missing, in the group's order.
func (g *Group) ReplicaRegionsFor(have []string) []string {
	var out []string
	for _, r := range g.Replicas {
		if !slices.Contains(have, r) {
			out = append(out, r)
		}
	}
	return out
}
