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
