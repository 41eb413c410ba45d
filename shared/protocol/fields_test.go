package protocol

import (
	"github.com/keyferry/keyferry/shared/names"

	"testing"
	"time"
)

func TestParseKeyARN(t *testing.T) {
	tests := []struct {
		arn  string
		ok   bool
		want keyARN
	}{
		{"arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", true, keyARN{"aws", "eu-west-3", "111122223333", "1234abcd-12ab-34cd-56ef-1234567890ab"}},
		{"arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-0123", true, keyARN{"aws-cn", "cn-north-1", "111122223333", "mrk-0123"}},
		{"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/k", true, keyARN{"aws-us-gov", "us-gov-west-1", "111122223333", "k"}},
		{"arn:aws:kms:eu-west-3:111122223333:alias/x", false, keyARN{}},
		{"arn:aws:s3:eu-west-3:111122223333:key/x", false, keyARN{}},
		{"arn:aws:kms:eu-west-3:1111:key/x", false, keyARN{}},
		{"arn:aws:kms:eu-west-3:111122223333:key/", false, keyARN{}},
		{"arn:aws:kms:eu-west-3:111122223333:key/x/y", false, keyARN{}},
		{" arn:aws:kms:eu-west-3:111122223333:key/x", false, keyARN{}},
	}
	for _, tc := range tests {
		got, err := parseKeyARN("key_arn", tc.arn)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseKeyARN(%q) = %+v, %v", tc.arn, got, err)
		}
	}
}

func TestRegionAndTextRules(t *testing.T) {
	for r, ok := range map[string]bool{
		"eu-west-3": true, "us-gov-west-1": true, "ap-southeast-5": true, "cn-northwest-1": true,
		"EU-WEST-3": false, "eu-west": false, "eu_west_3": false, "": false,
	} {
		if (names.CheckRegion(r) == nil) != ok {
			t.Errorf("region %q: match = %v", r, !ok)
		}
	}
	for s, ok := range map[string]bool{
		"kf-payments 2026": true, "clé-é": true, " lead": false, "trail ": false, "a\tb": false, "a\u200bb": false, "\xff": false,
	} {
		if err := checkText("f", s); (err == nil) != ok {
			t.Errorf("checkText(%q) = %v", s, err)
		}
	}
	if err := checkTime("t", time.Date(2026, 1, 1, 0, 0, 0, 0, fixedZone())); err == nil {
		t.Error("non-UTC time accepted")
	}
}
