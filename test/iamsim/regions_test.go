package iamsim

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/test/kmsemu"
)

// TestKMSRequestsOfAnotherRegion: the Region comes from the SigV4 scope; a
// bare key id or alias of a eu-west-1 request is looked up and named in
// eu-west-1; ReplicateKey needs kms:ReplicateKey on the primary (with
// kms:ReplicaRegion), kms:CreateKey on * with the replica's properties and
// tags, and kms:TagResource on the replica's ARN in the replica Region.
func TestKMSRequestsOfAnotherRegion(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261207/eu-west-1/kms/aws4_request, SignedHeaders=host, Signature=00")
	if got := RegionOf(r); got != "eu-west-1" {
		t.Fatalf("RegionOf = %q", got)
	}
	var looked []string
	k := &KMS{Region: "us-east-1", Account: "111122223333", Keys: func(id string) (kmsemu.KeyFacts, bool) {
		looked = append(looked, id)
		region := "us-east-1"
		if strings.Contains(id, ":eu-west-1:") {
			region = "eu-west-1"
		}
		return kmsemu.KeyFacts{ARN: "arn:aws:kms:" + region + ":111122223333:key/mrk-1", Origin: "EXTERNAL", KeySpec: "SYMMETRIC_DEFAULT",
			KeyUsage: "ENCRYPT_DECRYPT", MultiRegion: "true", Tags: map[string]string{"keyferry:group": "g"}}, true
	}}
	eu := withRequestRegion(context.Background(), "eu-west-1")
	calls, err := k.Classify(eu, "TrentService.UpdateAlias", []byte(`{"AliasName":"alias/g","TargetKeyId":"mrk-1"}`))
	if err != nil || len(calls) != 2 || calls[0].Resource != "arn:aws:kms:eu-west-1:111122223333:key/mrk-1" ||
		calls[1].Resource != "arn:aws:kms:eu-west-1:111122223333:alias/g" || looked[0] != "arn:aws:kms:eu-west-1:111122223333:key/mrk-1" {
		t.Errorf("UpdateAlias in eu-west-1: %+v %v (looked up %v)", calls, err, looked)
	}
	calls, err = k.Classify(context.Background(), "TrentService.ReplicateKey",
		[]byte(`{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/mrk-1","ReplicaRegion":"eu-west-1","Tags":[{"TagKey":"keyferry:group","TagValue":"g"}]}`))
	if err != nil || len(calls) != 3 {
		t.Fatalf("ReplicateKey: %+v %v", calls, err)
	}
	if c := calls[0]; c.Action != "kms:ReplicateKey" || c.Resource != "arn:aws:kms:us-east-1:111122223333:key/mrk-1" || c.Context["kms:ReplicaRegion"] != "eu-west-1" {
		t.Errorf("ReplicateKey's own call: %+v", c)
	}
	if c := calls[1]; c.Action != "kms:CreateKey" || c.Resource != "*" || c.Context["kms:MultiRegion"] != "true" ||
		c.Context["kms:MultiRegionKeyType"] != "REPLICA" || c.Context["kms:KeyOrigin"] != "EXTERNAL" || c.Context["aws:RequestTag/keyferry:group"] != "g" {
		t.Errorf("ReplicateKey's CreateKey: %+v", c)
	}
	if c := calls[2]; c.Action != "kms:TagResource" || c.Resource != "arn:aws:kms:eu-west-1:111122223333:key/mrk-1" {
		t.Errorf("ReplicateKey's TagResource: %+v", c)
	}
}
