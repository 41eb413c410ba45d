package stack

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/keyferry/keyferry/shared/groups"
)

// TestMultiRegionGroupsGetReplicaRegionsKMSAndNothingMore: a stack with a
// single-Region group (fleet-0000), one replicating into eu-west-1
// (fleet-0001) and one into eu-west-1 and ap-southeast-2 (fleet-0002):
// no cdk-nag finding open; CreateKey is MultiRegion false for fleet-0000
// only and true (primary) for the two others, plus the replica CreateKey
// (MultiRegionKeyType REPLICA) ReplicateKey needs; ReplicateKey on the
// primaries held by kms:ReplicaRegion and the tags of the groups that
// replicate there; every grant in another Region is on that Region's
// mrk- keys or the replicating groups' aliases, never RotateKeyOnDemand
// or ListKeyRotations; and the template holds no resource outside the
// primary's Region.
func TestMultiRegionGroupsGetReplicaRegionsKMSAndNothingMore(t *testing.T) {
	app, cp, _ := fleetStack(t, 3, func(g *groups.Group) {
		switch g.Name {
		case "fleet-0001":
			g.Mode, g.Replicas = groups.ModeAliasSwap, []string{"eu-west-1"}
		case "fleet-0002":
			g.Mode, g.Replicas = groups.ModeAliasSwap, []string{"eu-west-1", "ap-southeast-2"}
		}
	})
	ApplyChecks(app, false)
	if open := nagMessages(cp.Stack); len(open) > 0 {
		t.Fatalf("%d cdk-nag findings open:\n%s", len(open), strings.Join(open, "\n"))
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	b, _ := json.Marshal(assertions.Template_FromStack(cp.Stack, nil).ToJSON())
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	type stmt struct {
		Action    any
		Resource  any
		Condition map[string]map[string]any
	}
	var sts []stmt
	mrPolicies := 0
	for id, r := range tpl.Resources {
		switch {
		case r.Type == "AWS::IAM::Policy" && strings.HasPrefix(id, "FnrotateServiceRole"):
		case r.Type == "AWS::IAM::ManagedPolicy" && strings.HasPrefix(id, "MultiRegionPolicy"):
			mrPolicies++
			doc, _ := json.Marshal(r.Properties["PolicyDocument"])
			if len(doc) > 6144 {
				t.Errorf("%s is %d characters, IAM's managed policy limit is 6,144", id, len(doc))
			}
			roles, _ := json.Marshal(r.Properties["Roles"])
			for _, fn := range engineFunctions {
				if !strings.Contains(strings.ToLower(string(roles)), strings.ToLower(strings.ReplaceAll("Fn"+fn+"ServiceRole", "-", ""))) {
					t.Errorf("%s is not attached to the %s role: %s", id, fn, roles)
				}
			}
		default:
			continue
		}
		raw, _ := json.Marshal(r.Properties["PolicyDocument"].(map[string]any)["Statement"])
		var got []stmt
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, got...)
	}
	if len(sts) == 0 || mrPolicies != 1 {
		t.Fatalf("%d statements of the rotate role and %d MultiRegionPolicy, want 1", len(sts), mrPolicies)
	}
	list := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, x := range v {
				s, _ := x.(string)
				if s == "" {
					// Fn::Join of the partition/account: keep its literal parts.
					jb, _ := json.Marshal(x)
					s = string(jb)
				}
				out = append(out, s)
			}
			return out
		case map[string]any:
			jb, _ := json.Marshal(v)
			return []string{string(jb)}
		}
		return nil
	}
	names := func(s stmt, key string) []string {
		for _, op := range []string{"StringEquals", "ForAnyValue:StringEquals"} {
			if v, ok := s.Condition[op][key]; ok {
				return list(v)
			}
		}
		return nil
	}
	var createFalse, createTrue, createReplica [][]string
	replicate := map[string][]string{}
	for _, s := range sts {
		acts := list(s.Action)
		res := strings.Join(list(s.Resource), " ")
		if slices.Contains(acts, "kms:CreateKey") {
			mr := s.Condition["Bool"]["kms:MultiRegion"]
			tags := names(s, "aws:RequestTag/"+groups.GroupTagKey)
			switch {
			case mr == "false":
				createFalse = append(createFalse, tags)
			case mr == "true" && s.Condition["StringEquals"]["kms:MultiRegionKeyType"] == "REPLICA":
				createReplica = append(createReplica, tags)
			case mr == "true":
				createTrue = append(createTrue, tags)
			default:
				t.Errorf("kms:CreateKey without a kms:MultiRegion condition: %+v", s)
			}
			if s.Condition["StringEquals"]["kms:KeyOrigin"] != "EXTERNAL" {
				t.Errorf("kms:CreateKey not held to KeyOrigin EXTERNAL: %+v", s)
			}
		}
		if slices.Contains(acts, "kms:ReplicateKey") {
			if !strings.Contains(res, `key/mrk-*`) || strings.Contains(res, "eu-west-1") || strings.Contains(res, "ap-southeast-2") {
				t.Errorf("kms:ReplicateKey on %s, want the primary Region's mrk- keys", res)
			}
			rr := names(s, "kms:ReplicaRegion")
			if len(rr) != 1 {
				t.Fatalf("kms:ReplicateKey held by ReplicaRegion %v, want one Region per statement", rr)
			}
			replicate[rr[0]] = names(s, "aws:ResourceTag/"+groups.GroupTagKey)
		}
		for _, r := range []string{"eu-west-1", "ap-southeast-2"} {
			if !strings.Contains(res, ":kms:"+r+":") {
				continue
			}
			for _, one := range list(s.Resource) {
				if !strings.Contains(one, ":kms:"+r+":") {
					continue
				}
				if !strings.HasSuffix(one, `key/mrk-*"]]}`) && !strings.HasSuffix(one, `alias/fleet-0002"]]}`) && !strings.HasSuffix(one, `alias/fleet-0001"]]}`) {
					t.Errorf("grant in %s on %s: want only mrk- keys and the replicating groups' aliases", r, one)
				}
				if r == "ap-southeast-2" && strings.HasSuffix(one, `alias/fleet-0001"]]}`) {
					t.Errorf("grant in %s on the alias of a group that does not replicate there: %s", r, one)
				}
			}
			for _, a := range acts {
				if a == "kms:RotateKeyOnDemand" || a == "kms:ListKeyRotations" || a == "kms:CreateKey" {
					t.Errorf("%s granted on %s (replica Region %s)", a, res, r)
				}
			}
			if strings.Contains(res, "key/mrk-*") && s.Condition == nil {
				t.Errorf("%v on %s without the group tag condition", acts, res)
			}
		}
	}
	if len(createFalse) != 1 || !slices.Equal(createFalse[0], []string{"fleet-0000"}) {
		t.Errorf("single-Region CreateKey for %v, want [[fleet-0000]]", createFalse)
	}
	if len(createTrue) != 1 || !slices.Equal(createTrue[0], []string{"fleet-0001", "fleet-0002"}) {
		t.Errorf("multi-Region primary CreateKey for %v, want [[fleet-0001 fleet-0002]]", createTrue)
	}
	if len(createReplica) != 1 || !slices.Equal(createReplica[0], []string{"fleet-0001", "fleet-0002"}) {
		t.Errorf("replica CreateKey for %v, want [[fleet-0001 fleet-0002]]", createReplica)
	}
	if !slices.Equal(replicate["eu-west-1"], []string{"fleet-0001", "fleet-0002"}) || !slices.Equal(replicate["ap-southeast-2"], []string{"fleet-0002"}) || len(replicate) != 2 {
		t.Errorf("kms:ReplicateKey by replica Region: %v", replicate)
	}
	for id, r := range tpl.Resources {
		if jb, _ := json.Marshal(r.Properties); r.Type != "AWS::IAM::Policy" && r.Type != "AWS::IAM::ManagedPolicy" && (strings.Contains(string(jb), "eu-west-1") || strings.Contains(string(jb), "ap-southeast-2")) {
			t.Errorf("%s (%s) names a replica Region: the control plane stays in the primary's Region", id, r.Type)
		}
	}
}
