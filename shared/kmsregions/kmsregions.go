// Package kmsregions is the table of AWS Regions that offer KMS, with the
// partition each belongs to, and the rule multi-Region keys follow: a
// replica lives in another Region of the primary's partition.
//
// Source: the KMS endpoints of botocore's data/endpoints.json (shipped with
// the AWS CLI 1.45.11 installed here), read 2026-12-07; ReplicateKey in the
// KMS API reference: "creates a multi-Region replica key based on a
// multi-Region primary key in a different Region of the same Amazon Web
// Services partition".
package kmsregions

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

var partitions = map[string][]string{
	"aws": {"af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
		"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
		"ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1",
		"eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
		"il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2",
		"us-west-1", "us-west-2"},
	"aws-cn":     {"cn-north-1", "cn-northwest-1"},
	"aws-us-gov": {"us-gov-east-1", "us-gov-west-1"},
	"aws-iso":    {"us-iso-east-1", "us-iso-west-1"},
	"aws-iso-b":  {"us-isob-east-1", "us-isob-west-1"},
	"aws-iso-e":  {"eu-isoe-west-1"},
	"aws-iso-f":  {"us-isof-east-1", "us-isof-south-1"},
	"aws-eusc":   {"eusc-de-east-1"},
}

var byRegion = func() map[string]string {
	m := map[string]string{}
	for p, rs := range partitions {
		for _, r := range rs {
			m[r] = p
		}
	}
	return m
}()

// ErrUnknownRegion is returned (wrapped) for a name that is not a Region
// KMS is offered in.
var ErrUnknownRegion = errors.New("not a Region KMS is offered in")

// ErrOtherPartition is returned (wrapped) for a replica Region outside the
// primary's partition.
var ErrOtherPartition = errors.New("multi-Region keys replicate only within one partition")

// Partition returns the partition of region ("aws", "aws-cn", ...).
func Partition(region string) (string, error) {
	p, ok := byRegion[region]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownRegion, region)
	}
	return p, nil
}

// Known reports whether KMS is offered in region.
func Known(region string) bool { _, ok := byRegion[region]; return ok }

// All returns every Region, sorted.
func All() []string {
	out := make([]string, 0, len(byRegion))
	for r := range byRegion {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// CheckReplica checks that replica can hold a replica of a multi-Region
// primary key in primary: both known, different, same partition.
func CheckReplica(primary, replica string) error {
	pp, err := Partition(primary)
	if err != nil {
		return fmt.Errorf("primary region: %w", err)
	}
	rp, err := Partition(replica)
	if err != nil {
		return fmt.Errorf("replica region: %w", err)
	}
	if primary == replica {
		return fmt.Errorf("replica region %s is the primary's region; a replica must be in another Region", replica)
	}
	if pp != rp {
		return fmt.Errorf("%w: replica region %s is in partition %s, the primary's region %s in %s", ErrOtherPartition, replica, rp, primary, pp)
	}
	return nil
}

// IsMultiRegionARN reports whether keyARN names a multi-Region key (its key
// id begins with "mrk-", as KMS gives every multi-Region key).
func IsMultiRegionARN(keyARN string) bool {
	return strings.Contains(keyARN, ":key/mrk-")
}

// ReplicaARN is the ARN in region of the multi-Region key keyARN: related
// multi-Region keys share their key id (KMS developer guide, multi-Region
// keys: "the same key ID"), so only the Region of the ARN differs. A string
// that is not a KMS key ARN comes back unchanged.
func ReplicaARN(keyARN, region string) string {
	parts := strings.SplitN(keyARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "kms" {
		return keyARN
	}
	parts[3] = region
	return strings.Join(parts, ":")
}
