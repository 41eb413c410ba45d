package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func TestKeysAgree(t *testing.T) {
	var v keysView
	kfJSON(t, env(), 0, &v, "keys", "token-signing", "--json")
	if !v.Agree || len(v.Generations) == 0 || v.AliasTarget == "" {
		t.Fatalf("%+v", v)
	}
	cur := v.Generations[len(v.Generations)-1]
	if cur.State != "CURRENT" || cur.KeyARN != v.AliasTarget || cur.HSMLabel == "" || cur.KMSKeyState != "Enabled" {
		t.Fatalf("current generation: %+v", cur)
	}
	var e errDocT
	kfJSON(t, env(), 3, &e, "keys", "nope", "--json")
	kfJSON(t, env("KEYFERRY_GROUPS_FILE"), 3, &e, "keys", "nope", "--json")
}

// TestKeysFlagsDisagreement deletes a group's material behind keyferry's
// back: keys must flag it and exit 1.
func TestKeysFlagsDisagreement(t *testing.T) {
	var v keysView
	kfJSON(t, env(), 0, &v, "keys", "ledger-signing", "--json")
	if _, err := sb.KMS.DeleteImportedKeyMaterial(context.Background(), &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(v.AliasTarget)}); err != nil {
		t.Fatal(err)
	}
	var bad keysView
	kfJSON(t, env(), 1, &bad, "keys", "ledger-signing", "--json")
	cur := bad.Generations[len(bad.Generations)-1]
	if bad.Agree || len(cur.Disagreements) == 0 || !strings.Contains(strings.Join(cur.Disagreements, ";"), "PendingImport") {
		t.Fatalf("disagreement not flagged: %+v", cur)
	}
	r := kf(t, env(), "keys", "ledger-signing")
	if r.code != 1 || !strings.Contains(r.stdout, "! generation") {
		t.Fatalf("table does not flag:\n%s", r.stdout)
	}
	// Put the material back the way an operator would.
	var res []*actResult
	kfJSON(t, env(), 0, &res, "sync", "ledger-signing", "--import-material", "--wait", "--json")
	if len(res) != 1 || !strings.HasPrefix(res[0].Verdict, "ok") {
		t.Fatalf("re-import: %+v", res)
	}
	kfJSON(t, env(), 0, &v, "keys", "ledger-signing", "--json")
}

// TestKeysComparesReplicas: for a multi-Region group, keys compares every
// replica with the store as it does the primary (the operator principal
// may read the replica Regions' keys), flags a replica whose material went
// missing behind keyferry's back, and agrees again once sync re-imports it.
func TestKeysComparesReplicas(t *testing.T) {
	const group, region = "global-data", "eu-west-1"
	var v keysView
	kfJSON(t, env(), 0, &v, "keys", group, "--json")
	cur := v.Generations[len(v.Generations)-1]
	if !v.Agree || len(cur.Replicas) != 1 {
		t.Fatalf("keys %s: agree %v, replicas %+v", group, v.Agree, cur.Replicas)
	}
	rep := cur.Replicas[0]
	if rep.Region != region || !strings.Contains(rep.KeyARN, ":"+region+":") || !strings.Contains(rep.KeyARN, ":key/mrk-") ||
		rep.KMSKeyState != "Enabled" || rep.KMSImportState != "IMPORTED" {
		t.Fatalf("replica row %+v", rep)
	}
	if _, err := sb.KMSIn(region).DeleteImportedKeyMaterial(context.Background(), &kms.DeleteImportedKeyMaterialInput{KeyId: aws.String(rep.KeyARN)}); err != nil {
		t.Fatal(err)
	}
	var bad keysView
	kfJSON(t, env(), 1, &bad, "keys", group, "--json")
	d := strings.Join(bad.Generations[len(bad.Generations)-1].Disagreements, "; ")
	if bad.Agree || !strings.Contains(d, "replica in "+region) || !strings.Contains(d, "PendingImport") {
		t.Fatalf("the replica's missing material is not flagged: %q", d)
	}
	if r := kf(t, env(), "keys", group); r.code != 1 || !strings.Contains(r.stdout, "replica "+region) {
		t.Fatalf("table (exit %d) does not show the replica:\n%s", r.code, r.stdout)
	}
	var res []*actResult
	kfJSON(t, env(), 0, &res, "sync", group, "--import-material", "--wait", "--json")
	if len(res) != 1 || !strings.HasPrefix(res[0].Verdict, "ok") {
		t.Fatalf("re-import: %+v", res)
	}
	kfJSON(t, env(), 0, &v, "keys", group, "--json")
}
