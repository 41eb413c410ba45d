package policy

import (
	"path/filepath"
	"testing"
)

// TestPinBindsTheMultiRegionKeyID: an HSM key pinned to a multi-Region key
// wraps for the same key in every Region, never for another key; the pin
// file keeps the first ARN.
func TestPinBindsTheMultiRegionKeyID(t *testing.T) {
	const (
		use1  = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
		euw1  = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
		other = "arn:aws:kms:eu-west-1:111122223333:key/mrk-99999999999999999999999999999999"
		solo  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		solo2 = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	)
	s, err := OpenPins(filepath.Join(t.TempDir(), "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	if isNew, err := s.Claim("kf/g/1", use1); err != nil || !isNew {
		t.Fatalf("claim: %v %v", isNew, err)
	}
	if isNew, err := s.Claim("kf/g/1", euw1); err != nil || isNew {
		t.Fatalf("the replica of the pinned key: new=%v %v", isNew, err)
	}
	if err := s.Check("kf/g/1", euw1); err != nil {
		t.Fatalf("Check replica: %v", err)
	}
	for _, arn := range []string{other, solo} {
		if _, err := s.Claim("kf/g/1", arn); err == nil {
			t.Fatalf("pinned HSM key claimed for %s", arn)
		} else if r, ok := AsRefusal(err); !ok || r.Reason != ReasonKeyPinned {
			t.Fatalf("want key_pinned refusal, got %v", err)
		}
	}
	if got, _ := s.Lookup("kf/g/1"); got != use1 {
		t.Fatalf("pin rewritten to %s", got)
	}
	// Single-Region keys with the same id in two Regions are two keys.
	if _, err := s.Claim("kf/g/2", solo); err != nil {
		t.Fatal(err)
	}
	if err := s.Check("kf/g/2", solo2); err == nil {
		t.Fatal("single-Region pin accepted a key of another Region")
	}
}
