package kmsemu

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestCreateKeyValidation covers CreateKey's spec/usage/origin/policy/tag rules.
func TestCreateKeyValidation(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	tests := []struct {
		name string
		in   kms.CreateKeyInput
		want string
	}{
		{"default symmetric", kms.CreateKeyInput{}, ""},
		{"HMAC without usage", kms.CreateKeyInput{KeySpec: types.KeySpecHmac256}, errValidation},
		{"HMAC with MAC usage", kms.CreateKeyInput{KeySpec: types.KeySpecHmac384, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}, ""},
		{"RSA with MAC usage", kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}, errValidation},
		{"secp256k1 sign", kms.CreateKeyInput{KeySpec: types.KeySpecEccSecgP256k1, KeyUsage: types.KeyUsageTypeSignVerify}, ""},
		{"ECC encrypt", kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeEncryptDecrypt}, errValidation},
		{"unknown spec", kms.CreateKeyInput{KeySpec: "AES_512"}, errValidation},
		{"unknown origin", kms.CreateKeyInput{Origin: "MOON"}, errValidation},
		{"CloudHSM origin", kms.CreateKeyInput{Origin: types.OriginTypeAwsCloudhsm}, errUnsupported},
		{"multi-Region", kms.CreateKeyInput{MultiRegion: boolPtr(true)}, ""},
		{"malformed policy", kms.CreateKeyInput{Policy: strPtr("{not json")}, errMalformedPolicy},
		{"aws: tag", kms.CreateKeyInput{Tags: []types.Tag{{TagKey: strPtr("aws:x"), TagValue: strPtr("v")}}}, errTag},
		{"tags", kms.CreateKeyInput{Tags: []types.Tag{{TagKey: strPtr("team"), TagValue: strPtr("sec")}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateKey(context.Background(), &tc.in)
			wantCode(t, err, tc.want)
		})
	}
}

func boolPtr(b bool) *bool { return &b }

// TestKeyLifecycle: enable/disable, scheduled deletion on the emulator
// clock, cancel (-> Disabled), tags, policy, and which id forms each
// operation accepts.
func TestKeyLifecycle(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	md := must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	id, arn := *md.KeyId, *md.Arn
	alias := "alias/life"
	aliasArn := "arn:aws:kms:" + testRegion + ":" + testAccount + ":" + alias
	must[*kms.CreateAliasOutput](t)(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: &alias, TargetKeyId: &id}))
	for _, ref := range []string{id, arn, alias, aliasArn} {
		if got := *describe(t, c, ref).KeyId; got != id {
			t.Fatalf("DescribeKey(%s) = %s", ref, got)
		}
	}
	forms := []struct {
		ref, want string
	}{{id, ""}, {arn, ""}, {alias, errNotFound}, {aliasArn, errNotFound},
		{"arn:aws:kms:us-west-2:" + testAccount + ":key/" + id, errNotFound}, {"not-a-key", errNotFound}}
	for _, f := range forms {
		_, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: &f.ref})
		if errCode(err) != f.want {
			t.Errorf("EnableKey(%s): %v, want %q", f.ref, err, f.want)
		}
	}
	must[*kms.DisableKeyOutput](t)(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: &id}))
	if st := describe(t, c, id).KeyState; st != types.KeyStateDisabled {
		t.Fatalf("state %s", st)
	}
	for _, days := range []int32{6, 31} {
		_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: ptr32(days)})
		wantCode(t, err, errValidation)
	}
	sd := must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: ptr32(7)}))
	if sd.KeyState != types.KeyStatePendingDeletion || *sd.PendingWindowInDays != 7 {
		t.Fatalf("%+v", sd)
	}
	_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &id})
	wantCode(t, err, errInvalidState)
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: &id, Tags: []types.Tag{{TagKey: strPtr("a"), TagValue: strPtr("b")}}})
	wantCode(t, err, errInvalidState)
	must[*kms.CancelKeyDeletionOutput](t)(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: &id}))
	if st := describe(t, c, id).KeyState; st != types.KeyStateDisabled {
		t.Fatalf("state after cancel %s, want Disabled", st)
	}
	_, err = c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: &id})
	wantCode(t, err, errInvalidState)

	must[*kms.TagResourceOutput](t)(c.TagResource(ctx, &kms.TagResourceInput{KeyId: &id, Tags: []types.Tag{{TagKey: strPtr("a"), TagValue: strPtr("1")}, {TagKey: strPtr("b"), TagValue: strPtr("2")}}}))
	must[*kms.UntagResourceOutput](t)(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: &id, TagKeys: []string{"a"}}))
	tags := must[*kms.ListResourceTagsOutput](t)(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: &id}))
	if len(tags.Tags) != 1 || *tags.Tags[0].TagKey != "b" {
		t.Fatalf("tags %+v", tags.Tags)
	}
	pol := `{"Version":"2012-10-17","Statement":[]}`
	must[*kms.PutKeyPolicyOutput](t)(c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: &id, Policy: &pol}))
	got := must[*kms.GetKeyPolicyOutput](t)(c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &id}))
	if *got.Policy != pol {
		t.Fatalf("policy %s", *got.Policy)
	}

	// Deletion happens when the emulator clock passes DeletionDate.
	must[*kms.ScheduleKeyDeletionOutput](t)(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &id, PendingWindowInDays: ptr32(7)}))
	srv.Advance(7*24*time.Hour - time.Minute)
	describe(t, c, id)
	srv.Advance(2 * time.Minute)
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	wantCode(t, err, errNotFound)
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &alias})
	wantCode(t, err, errNotFound)
}

// TestEnableDisableOnPendingImport: a key without material can be neither.
func TestEnableDisableOnPendingImport(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	id := createExternal(t, c, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
	_, err := c.EnableKey(context.Background(), &kms.EnableKeyInput{KeyId: &id})
	wantCode(t, err, errInvalidState)
	_, err = c.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: &id})
	wantCode(t, err, errInvalidState)
}

// TestListKeysPaging pages through ListKeys with Limit and Marker.
func TestListKeysPaging(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		must[*kms.CreateKeyOutput](t)(c.CreateKey(ctx, &kms.CreateKeyInput{}))
	}
	seen := map[string]bool{}
	var marker *string
	for pages := 0; ; pages++ {
		out := must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{Limit: ptr32(2), Marker: marker}))
		for _, k := range out.Keys {
			seen[*k.KeyId] = true
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 5 {
		t.Fatalf("saw %d keys", len(seen))
	}
	_, err := c.ListKeys(ctx, &kms.ListKeysInput{Limit: ptr32(1001)})
	wantCode(t, err, errValidation)
}
