package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
	"github.com/keyferry/keyferry/shared/kmsregions"
)

// keyRow is one generation as the store and KMS see it.
type keyRow struct {
	Generation       int64      `json:"generation"`
	KeyARN           string     `json:"key_arn"`
	KeyMaterialID    string     `json:"key_material_id,omitempty"`
	HSMLabel         string     `json:"hsm_label"`
	Mode             string     `json:"mode"`
	State            string     `json:"state"`
	CreatedAt        time.Time  `json:"created_at"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	KMSKeyState      string     `json:"kms_key_state,omitempty"`
	KMSMaterialState string     `json:"kms_material_state,omitempty"`
	KMSImportState   string     `json:"kms_import_state,omitempty"`
	KMSValidTo       *time.Time `json:"kms_valid_to,omitempty"`
	// Replicas are the multi-Region key's replicas (groups with replicas:),
	// each compared with the store as the primary is.
	Replicas      []replicaRow `json:"replicas,omitempty"`
	Disagreements []string     `json:"disagreements"`
}

// replicaRow is one replica Region of a generation's multi-Region key.
type replicaRow struct {
	Region           string     `json:"region"`
	KeyARN           string     `json:"key_arn"`
	KMSKeyState      string     `json:"kms_key_state,omitempty"`
	KMSMaterialState string     `json:"kms_material_state,omitempty"`
	KMSImportState   string     `json:"kms_import_state,omitempty"`
	KMSValidTo       *time.Time `json:"kms_valid_to,omitempty"`
}

type keysView struct {
	Group       string   `json:"group"`
	Alias       string   `json:"alias,omitempty"`
	AliasTarget string   `json:"alias_target,omitempty"`
	Generations []keyRow `json:"generations"`
	Agree       bool     `json:"agree"`
}

// expirySlack is how far the store's and KMS's expiry may differ.
const expirySlack = time.Minute

func cmdKeys(ctx context.Context, a *app, args []string) error {
	fs := a.flags("keys", "keys GROUP [--json]",
		"Lists every generation of GROUP with its KMS key ARN, KeyMaterialId, HSM label, state, created and\nexpiry, from the store and from KMS (DescribeKey, ListKeyRotations), flagging any disagreement.\nExit 1 when they disagree.")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("keys: want exactly one GROUP")
	}
	name := pos[0]
	g, err := a.checkGroup(name)
	if err != nil {
		return err
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	gens, err := st.Generations(ctx, name)
	if err != nil {
		return err
	}
	if g == nil && len(gens) == 0 {
		return notFoundf("unknown_group", "unknown group %q (no generations in the store; pass --groups to check the name)", name)
	}
	kc, err := a.kmsClient(ctx)
	if err != nil {
		return err
	}
	v, err := compareKeys(ctx, kc, name, g, gens)
	if err != nil {
		return err
	}
	a.emit(v, func(w io.Writer) { printKeys(w, v) })
	if !v.Agree {
		a.code = exitFailed
	}
	return nil
}

// kmsReader is the slice of the KMS client keys uses.
type kmsReader interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	ListKeyRotations(ctx context.Context, in *kms.ListKeyRotationsInput, opts ...func(*kms.Options)) (*kms.ListKeyRotationsOutput, error)
}

var _ kmsReader = (*kms.Client)(nil)

type kmsKey struct {
	md        *kmstypes.KeyMetadata
	missing   bool
	materials map[string]kmstypes.RotationsListEntry // by KeyMaterialId; nil when not listable
}

// inRegion addresses a KMS call to region (a replica's); "" keeps the
// client's.
func inRegion(region string) func(*kms.Options) {
	return func(o *kms.Options) {
		if region != "" {
			o.Region = region
		}
	}
}

func loadKMSKey(ctx context.Context, kc kmsReader, arn, region string) (*kmsKey, error) {
	out, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)}, inRegion(region))
	var nf *kmstypes.NotFoundException
	if errors.As(err, &nf) {
		return &kmsKey{missing: true}, nil
	}
	if err != nil {
		return nil, err
	}
	k := &kmsKey{md: out.KeyMetadata}
	if out.KeyMetadata.KeySpec != kmstypes.KeySpecSymmetricDefault {
		return k, nil // ListKeyRotations applies to symmetric keys only
	}
	k.materials = map[string]kmstypes.RotationsListEntry{}
	var marker *string
	for {
		r, err := kc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(arn), IncludeKeyMaterial: kmstypes.IncludeKeyMaterialAllKeyMaterial, Marker: marker}, inRegion(region))
		if err != nil {
			return nil, err
		}
		for _, e := range r.Rotations {
			k.materials[aws.ToString(e.KeyMaterialId)] = e
		}
		if !r.Truncated || r.NextMarker == nil {
			return k, nil
		}
		marker = r.NextMarker
	}
}

// compareKeys reads KMS for every generation and lists the disagreements.
func compareKeys(ctx context.Context, kc kmsReader, name string, g *groups.Group, gens []*store.Generation) (*keysView, error) {
	v := &keysView{Group: name, Generations: []keyRow{}, Agree: true}
	if g != nil && g.Alias != "" {
		v.Alias = g.Alias
		out, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(g.Alias)})
		var nf *kmstypes.NotFoundException
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return nil, err
		default:
			v.AliasTarget = aws.ToString(out.KeyMetadata.Arn)
		}
	}
	keys := map[string]*kmsKey{}
	for _, gen := range gens {
		row := keyRow{Generation: gen.Generation, KeyARN: gen.KeyARN, KeyMaterialID: gen.KeyMaterialID, HSMLabel: gen.HSMLabel,
			Mode: string(gen.Mode), State: string(gen.State), CreatedAt: gen.CreatedAt, Disagreements: []string{}}
		if !gen.ExpiresAt.IsZero() {
			t := gen.ExpiresAt
			row.ExpiresAt = &t
		}
		k := keys[gen.KeyARN]
		if k == nil {
			var err error
			if k, err = loadKMSKey(ctx, kc, gen.KeyARN, ""); err != nil {
				return nil, err
			}
			keys[gen.KeyARN] = k
		}
		flag := func(format string, args ...any) {
			row.Disagreements = append(row.Disagreements, fmt.Sprintf(format, args...))
		}
		switch {
		case k.missing:
			flag("KMS has no key %s", gen.KeyARN)
		default:
			kv := checkKMSKey(gen, k, row.ExpiresAt, "the KMS key", "KMS", flag)
			row.KMSKeyState, row.KMSMaterialState, row.KMSImportState, row.KMSValidTo = kv.keyState, kv.materialState, kv.importState, kv.validTo
			if gen.State == store.GenCurrent {
				if md := k.md; md.KeyState != kmstypes.KeyStateEnabled && md.KeyState != kmstypes.KeyStatePendingImport {
					flag("current generation but the KMS key is %s", md.KeyState)
				}
				if v.Alias != "" && v.AliasTarget != gen.KeyARN {
					flag("alias %s points at %s", v.Alias, orDash(v.AliasTarget))
				}
			}
		}
		if !k.missing && kmsregions.IsMultiRegionARN(gen.KeyARN) {
			reps, err := compareReplicas(ctx, kc, g, gen, k, &row, flag)
			if err != nil {
				return nil, err
			}
			row.Replicas = reps
		}
		if len(row.Disagreements) > 0 {
			v.Agree = false
		}
		v.Generations = append(v.Generations, row)
	}
	return v, nil
}

// compareReplicas compares each replica of gen's multi-Region key with the
// store: the Regions the group lists and those KMS reports for the primary
// (MultiRegionConfiguration) must be the same, and every replica must hold
// the generation's material as the primary does (the same expiry).
func compareReplicas(ctx context.Context, kc kmsReader, g *groups.Group, gen *store.Generation, primary *kmsKey, row *keyRow, flag func(string, ...any)) ([]replicaRow, error) {
	listed := map[string]bool{}
	if g != nil {
		for _, r := range g.Replicas {
			listed[r] = true
		}
	}
	inKMS := map[string]bool{}
	if mr := primary.md.MultiRegionConfiguration; mr != nil {
		for _, r := range mr.ReplicaKeys {
			inKMS[aws.ToString(r.Region)] = true
		}
	}
	regions := map[string]bool{}
	for r := range listed {
		regions[r] = true
	}
	for r := range inKMS {
		regions[r] = true
	}
	names := make([]string, 0, len(regions))
	for r := range regions {
		names = append(names, r)
	}
	sort.Strings(names)
	var out []replicaRow
	for _, r := range names {
		rr := replicaRow{Region: r, KeyARN: kmsregions.ReplicaARN(gen.KeyARN, r)}
		switch {
		case g != nil && !listed[r]:
			flag("KMS has a replica in %s that the group does not list", r)
		case !inKMS[r]:
			flag("the group lists replica %s but the primary's MultiRegionConfiguration has none there", r)
		}
		k, err := loadKMSKey(ctx, kc, rr.KeyARN, r)
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", r, err)
		}
		out = append(out, rr)
		if k.missing {
			flag("replica in %s: KMS has no key %s", r, rr.KeyARN)
			continue
		}
		p := &out[len(out)-1]
		where := "the replica in " + r
		kv := checkKMSKey(gen, k, row.ExpiresAt, where, where, flag)
		p.KMSKeyState, p.KMSMaterialState, p.KMSImportState, p.KMSValidTo = kv.keyState, kv.materialState, kv.importState, kv.validTo
	}
	return out, nil
}

// kmsView is what KMS says of one key (the primary or a replica) about a
// generation's material.
type kmsView struct {
	keyState, materialState, importState string
	validTo                              *time.Time
}

// checkKMSKey compares KMS key k (named key, its material named by of in
// the messages) with generation gen as the store records it, flagging
// every disagreement: material missing from a live generation, a killed
// one still usable, another current material, the store's expiry.
func checkKMSKey(gen *store.Generation, k *kmsKey, expires *time.Time, key, of string, flag func(string, ...any)) kmsView {
	md := k.md
	v := kmsView{keyState: string(md.KeyState)}
	if md.ValidTo != nil {
		t := *md.ValidTo
		v.validTo = &t
	}
	live := gen.State == store.GenCurrent || gen.State == store.GenPrevious
	if live && md.KeyState == kmstypes.KeyStatePendingImport {
		flag("store says %s but %s is PendingImport (material missing)", gen.State, key)
	}
	if gen.State == store.GenKilled && md.KeyState == kmstypes.KeyStateEnabled && k.materials == nil {
		flag("store says KILLED but %s is Enabled", key)
	}
	if gen.State == store.GenCurrent && gen.KeyMaterialID != "" && md.CurrentKeyMaterialId != nil && *md.CurrentKeyMaterialId != gen.KeyMaterialID {
		flag("%s current key material is %s", of, *md.CurrentKeyMaterialId)
	}
	if k.materials != nil && gen.KeyMaterialID != "" {
		e, ok := k.materials[gen.KeyMaterialID]
		if !ok {
			flag("%s does not list key material %s (ListKeyRotations)", of, gen.KeyMaterialID)
		} else {
			v.materialState, v.importState = string(e.KeyMaterialState), string(e.ImportState)
			if e.ValidTo != nil {
				t := *e.ValidTo
				v.validTo = &t
			}
			if live && e.ImportState == kmstypes.ImportStatePendingImport {
				flag("store says %s but %s material is PENDING_IMPORT", gen.State, of)
			}
			if gen.State == store.GenKilled && e.ImportState == kmstypes.ImportStateImported {
				flag("store says KILLED but %s material is IMPORTED", of)
			}
		}
	}
	if live && expires != nil && v.validTo != nil {
		if d := expires.Sub(*v.validTo); d > expirySlack || d < -expirySlack {
			flag("expiry differs: store %s, %s %s", stamp(*expires), of, stamp(*v.validTo))
		}
	}
	return v
}

func printKeys(w io.Writer, v *keysView) {
	if v.Alias != "" {
		fmt.Fprintf(w, "group %s, alias %s -> %s\n", v.Group, v.Alias, orDash(v.AliasTarget))
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "\tGEN\tSTATE\tKMS KEY\tKEY STATE\tMATERIAL\tKMS MATERIAL\tHSM LABEL\tCREATED\tEXPIRES")
	for _, r := range v.Generations {
		mark := ""
		if len(r.Disagreements) > 0 {
			mark = "!"
		}
		exp := "-"
		if r.ExpiresAt != nil {
			exp = stamp(*r.ExpiresAt)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, r.Generation, r.State, r.KeyARN, orDash(r.KMSKeyState),
			orDash(r.KeyMaterialID), orDash(r.KMSMaterialState+" "+r.KMSImportState), r.HSMLabel, stamp(r.CreatedAt), exp)
		for _, rep := range r.Replicas {
			rexp := "-"
			if rep.KMSValidTo != nil {
				rexp = stamp(*rep.KMSValidTo)
			}
			fmt.Fprintf(tw, "\t\treplica %s\t%s\t%s\t\t%s\t\t\t%s\n", rep.Region, rep.KeyARN, orDash(rep.KMSKeyState),
				orDash(rep.KMSMaterialState+" "+rep.KMSImportState), rexp)
		}
	}
	tw.Flush()
	for _, r := range v.Generations {
		for _, d := range r.Disagreements {
			fmt.Fprintf(w, "! generation %d: %s\n", r.Generation, d)
		}
	}
	if v.Agree {
		fmt.Fprintln(w, "store and KMS agree")
	}
}

// groupOfKey finds the group of a KMS key by its keyferry:group tag.
func (a *app) groupOfKey(ctx context.Context, key string) (string, error) {
	kc, err := a.kmsClient(ctx)
	if err != nil {
		return "", err
	}
	md, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	var nf *kmstypes.NotFoundException
	if errors.As(err, &nf) {
		return "", notFoundf("unknown_key", "KMS has no key %q", key)
	}
	if err != nil {
		return "", err
	}
	tags, err := kc.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: md.KeyMetadata.KeyId})
	if err != nil {
		return "", err
	}
	for _, t := range tags.Tags {
		if aws.ToString(t.TagKey) == groups.GroupTagKey {
			return aws.ToString(t.TagValue), nil
		}
	}
	return "", notFoundf("unknown_group", "KMS key %s has no %s tag: not a keyferry key", aws.ToString(md.KeyMetadata.Arn), groups.GroupTagKey)
}
