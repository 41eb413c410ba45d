package kmsregions

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckReplica(t *testing.T) {
	for _, tc := range []struct {
		primary, replica string
		want             error
		wantText         string
	}{
		{"us-east-1", "eu-west-1", nil, ""},
		{"cn-north-1", "cn-northwest-1", nil, ""},
		{"us-east-1", "us-east-1", nil, "is the primary's region"},
		{"us-east-1", "eu-west-9", ErrUnknownRegion, "replica region"},
		{"mars-1", "eu-west-1", ErrUnknownRegion, "primary region"},
		{"us-east-1", "cn-north-1", ErrOtherPartition, "partition aws-cn"},
	} {
		err := CheckReplica(tc.primary, tc.replica)
		switch {
		case tc.wantText == "" && err != nil:
			t.Errorf("%s->%s: %v", tc.primary, tc.replica, err)
		case tc.wantText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantText)):
			t.Errorf("%s->%s: got %v, want %q", tc.primary, tc.replica, err, tc.wantText)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s->%s: %v is not %v", tc.primary, tc.replica, err, tc.want)
		}
	}
	if len(All()) < 40 || !Known("eu-west-1") || Known("eu-west-9") {
		t.Fatalf("table: %d regions", len(All()))
	}
}

func TestReplicaARN(t *testing.T) {
	tests := []struct {
		arn, region, want string
		multi             bool
	}{
		{"arn:aws:kms:us-east-1:111122223333:key/mrk-0c8a9c247a050efc96dcd1ccbc5a45df", "eu-west-1",
			"arn:aws:kms:eu-west-1:111122223333:key/mrk-0c8a9c247a050efc96dcd1ccbc5a45df", true},
		{"arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1", "cn-northwest-1", "arn:aws-cn:kms:cn-northwest-1:111122223333:key/mrk-1", true},
		{"arn:aws:kms:us-east-1:111122223333:key/5757e94a-c4e6-4c07-87f0-058616a9e7cd", "eu-west-1",
			"arn:aws:kms:eu-west-1:111122223333:key/5757e94a-c4e6-4c07-87f0-058616a9e7cd", false},
		{"alias/x", "eu-west-1", "alias/x", false},
		{"arn:aws:iam::111122223333:role/x", "eu-west-1", "arn:aws:iam::111122223333:role/x", false},
	}
	for _, tc := range tests {
		if got := ReplicaARN(tc.arn, tc.region); got != tc.want {
			t.Errorf("ReplicaARN(%q, %q) = %q, want %q", tc.arn, tc.region, got, tc.want)
		}
		if got := IsMultiRegionARN(tc.arn); got != tc.multi {
			t.Errorf("IsMultiRegionARN(%q) = %v", tc.arn, got)
		}
	}
}
