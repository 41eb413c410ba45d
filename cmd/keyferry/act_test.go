package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestRotateWaitShowsProgressAndVerifiesNewGeneration is the issue's
// acceptance test: rotate --wait against the sandbox shows the job's
// states as they happen and ends with the new generation verified.
func TestRotateWaitShowsProgressAndVerifiesNewGeneration(t *testing.T) {
	var before statusView
	kfJSON(t, env(), 0, &before, "status", "--json")
	gen0 := int64(0)
	for _, g := range before.Groups {
		if g.Name == "payments-data" {
			gen0 = g.Generation
		}
	}
	r := kf(t, env(), "rotate", "payments-data", "--wait")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"following its states", "-> KEY_READY", "-> REQUESTED", "-> IMPORTED", "-> SUCCEEDED", "verdict: ok: generation"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("progress lacks %q:\n%s", want, r.stdout)
		}
	}
	m := regexp.MustCompile(`verdict: ok: generation (\d+) verified`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] != itoa(gen0+1) {
		t.Fatalf("want generation %d verified:\n%s", gen0+1, r.stdout)
	}

	// --json: progress on stderr, the verdict document on stdout; KMS agrees.
	var res actResult
	rr := kfJSON(t, env(), 0, &res, "rotate", "payments-data", "--wait", "--json")
	if res.Verified == nil || !res.Verified.Verified || res.Verified.Generation != gen0+2 || !strings.Contains(rr.stderr, "-> SUCCEEDED") {
		t.Fatalf("json verdict: %+v\nstderr %s", res, rr.stderr)
	}
	md, err := sb.KMS.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/payments-data")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(md.KeyMetadata.CurrentKeyMaterialId) != res.Verified.KeyMaterialID || aws.ToString(md.KeyMetadata.Arn) != res.Verified.KeyARN {
		t.Fatalf("KMS current material %s, verified %s", aws.ToString(md.KeyMetadata.CurrentKeyMaterialId), res.Verified.KeyMaterialID)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRotateWithoutWaitAndIdempotency(t *testing.T) {
	var a, b actResult
	kfJSON(t, env(), 0, &a, "rotate", "archive-data", "--request-id", "cli-test-1", "--json")
	kfJSON(t, env(), 0, &b, "rotate", "archive-data", "--request-id", "cli-test-1", "--json")
	if len(a.Response.Jobs) != 1 || a.Response.Jobs[0].JobID == "" || b.Response.Jobs[0].JobID != a.Response.Jobs[0].JobID || b.Response.Jobs[0].Outcome != "duplicate" {
		t.Fatalf("same request id must name the same job: %+v / %+v", a.Response, b.Response)
	}
	if _, err := sb.WaitJob(context.Background(), a.Response.Jobs[0].JobID, 60*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestActErrors(t *testing.T) {
	tests := []struct {
		name string
		drop []string
		args []string
		code int
		kind string
	}{
		{"unknown group (groups file)", nil, []string{"rotate", "nope"}, 3, "unknown_group"},
		{"unknown group (operator function)", []string{"KEYFERRY_GROUPS_FILE"}, []string{"rotate", "nope"}, 3, "unknown_group"},
		{"kill without confirm", nil, []string{"kill", "archive-data"}, 2, "usage"},
		{"kill with wrong confirm", nil, []string{"kill", "archive-data", "--confirm", "webhook-mac"}, 2, "usage"},
		{"sync delete without confirm", nil, []string{"sync", "webhook-mac", "--delete-material"}, 2, "usage"},
		{"operator function missing", nil, []string{"rotate", "webhook-mac", "--function", "keyferry-nope"}, 7, "control_plane"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e errDocT
			kfJSON(t, env(tc.drop...), tc.code, &e, append(tc.args, "--json")...)
			if e.Error.Kind != tc.kind || e.Error.ExitCode != tc.code || e.Error.Message == "" {
				t.Fatalf("%+v", e)
			}
		})
	}
}

func TestKillAndRestore(t *testing.T) {
	var k actResult
	kfJSON(t, env(), 0, &k, "kill", "archive-data", "--confirm", "archive-data", "--json")
	if k.Response.Changed < 1 {
		t.Fatalf("kill changed nothing: %+v", k.Response)
	}
	md, err := sb.KMS.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/archive-data")})
	if err != nil || md.KeyMetadata.KeyState != "PendingImport" {
		t.Fatalf("after kill the key must be PendingImport: %v %v", err, md)
	}
	var s statusView
	kfJSON(t, env(), 0, &s, "status", "--json")
	for _, g := range s.Groups {
		if g.Name == "archive-data" && !g.Killed {
			t.Errorf("status does not show archive-data killed")
		}
	}
	var r actResult
	kfJSON(t, env(), 0, &r, "restore", "archive-data", "--wait", "--json")
	if len(r.Jobs) == 0 || !strings.HasPrefix(r.Verdict, "ok") {
		t.Fatalf("restore: %+v", r)
	}
	md, err = sb.KMS.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String("alias/archive-data")})
	if err != nil || md.KeyMetadata.KeyState != "Enabled" {
		t.Fatalf("after restore the key must be Enabled: %v %v", err, md)
	}
	var kv keysView
	kfJSON(t, env(), 0, &kv, "keys", "archive-data", "--json")
}

func TestSync(t *testing.T) {
	var res []*actResult
	kfJSON(t, env(), 0, &res, "sync", "alias/webhook-mac", "--wait", "--json")
	if len(res) != 2 || res[0].Action != "sync-policy" || res[1].Action != "sync-import" || res[0].Group != "webhook-mac" {
		t.Fatalf("sync by alias: %+v", res)
	}
	if res[1].Verdict != "" && !strings.HasPrefix(res[1].Verdict, "ok") {
		t.Fatalf("re-import: %s", res[1].Verdict)
	}
	var pol []*actResult
	kfJSON(t, env(), 0, &pol, "sync", "webhook-mac", "--policy", "--json")
	if len(pol) != 1 || pol[0].Action != "sync-policy" {
		t.Fatalf("sync --policy: %+v", pol)
	}
}

// TestNoAgentConnected stops every agent of the pool: acting refuses with exit 4.
func TestNoAgentConnected(t *testing.T) {
	ctx := context.Background()
	if err := sb.StopAgents(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.StartAgents(ctx, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var v statusView
		kfJSON(t, env(), 0, &v, "status", "--json")
		// status lists every registered agent of each pool, connected or not.
		connected := 0
		for _, a := range v.Agents {
			if a.Connected {
				connected++
			}
		}
		if connected == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent still listed after stop: %+v", v.Agents)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var e errDocT
	kfJSON(t, env(), 4, &e, "rotate", "token-signing", "--wait", "--json")
	if e.Error.Kind != "no_agent" || !strings.Contains(e.Error.Message, "sandbox") {
		t.Fatalf("%+v", e)
	}
}
