package iamsim

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/keyferry/keyferry/test/kmsemu"
)

// Several Regions through one gate: a request is for the Region its SigV4
// credential scope names (Credential=AKID/DATE/REGION/SERVICE/aws4_request),
// as AWS routes by endpoint. The KMS classifier resolves a bare key id or
// alias name in that Region and names resources with it.

type regionKey struct{}

// RegionOf returns the Region of a SigV4 Authorization header's credential
// scope ("" when there is none).
func RegionOf(r *http.Request) string {
	_, rest, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	scope, _, _ := strings.Cut(rest, ",")
	parts := strings.Split(scope, "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[2]
}

func withRequestRegion(ctx context.Context, region string) context.Context {
	if region == "" {
		return ctx
	}
	return context.WithValue(ctx, regionKey{}, region)
}

// requestRegion is the Region the gate read from the request, or def.
func requestRegion(ctx context.Context, def string) string {
	if r, _ := ctx.Value(regionKey{}).(string); r != "" {
		return r
	}
	return def
}

// inRegion turns a bare key id or alias name of a request to region into
// its ARN there, so the key is looked up in that Region (an ARN already
// names its own).
func (k *KMS) inRegion(region, id string) string {
	if id == "" || region == k.Region || strings.HasPrefix(id, "arn:") {
		return id
	}
	if strings.HasPrefix(id, "alias/") {
		return "arn:aws:kms:" + region + ":" + k.Account + ":" + id
	}
	return "arn:aws:kms:" + region + ":" + k.Account + ":key/" + id
}

// replicateKey is what ReplicateKey needs (KMS API reference, ReplicateKey,
// "Required permissions"): kms:ReplicateKey on the primary key (with
// kms:ReplicaRegion), kms:CreateKey in the replica Region (on "*", with
// the replica's properties: origin, spec and usage of the primary,
// kms:MultiRegion true, kms:MultiRegionKeyType REPLICA, and the request's
// tags) and, to use Tags, kms:TagResource on the replica key there.
func (k *KMS) replicateKey(req map[string]any, primary kmsemu.KeyFacts, ctx map[string]any) ([]Call, error) {
	replicaRegion, _ := req["ReplicaRegion"].(string)
	ctx["kms:ReplicaRegion"] = replicaRegion
	var policy []byte
	if primary.Policy != "" {
		policy = []byte(primary.Policy)
	}
	calls := []Call{{Action: "kms:ReplicateKey", Resource: primary.ARN, Context: ctx, ResourcePolicy: policy}}
	create := map[string]any{"kms:CallerAccount": k.Account, "kms:KeyOrigin": primary.Origin, "kms:KeySpec": primary.KeySpec,
		"kms:KeyUsage": primary.KeyUsage, "kms:MultiRegion": "true", "kms:MultiRegionKeyType": "REPLICA"}
	tag := map[string]any{"kms:CallerAccount": k.Account}
	tags, _ := req["Tags"].([]any)
	var keys []string
	for _, t := range tags {
		m, _ := t.(map[string]any)
		tk, _ := m["TagKey"].(string)
		tv, _ := m["TagValue"].(string)
		create["aws:RequestTag/"+tk], tag["aws:RequestTag/"+tk] = tv, tv
		keys = append(keys, tk)
	}
	if len(keys) > 0 {
		sort.Strings(keys)
		create["aws:TagKeys"], tag["aws:TagKeys"] = keys, keys
	}
	calls = append(calls, Call{Action: "kms:CreateKey", Resource: "*", Context: create})
	if len(keys) > 0 {
		// The replica's key policy: the request's, or KMS's default one
		// (the account's root, which lets IAM policies decide).
		replicaPolicy, _ := req["Policy"].(string)
		if replicaPolicy == "" {
			replicaPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + k.Account +
				`:root"},"Action":"kms:*","Resource":"*"}]}`
		}
		id := primary.ARN[strings.LastIndex(primary.ARN, "/")+1:]
		calls = append(calls, Call{Action: "kms:TagResource", Resource: "arn:aws:kms:" + replicaRegion + ":" + k.Account + ":key/" + id,
			Context: tag, ResourcePolicy: []byte(replicaPolicy)})
	}
	return calls, nil
}
