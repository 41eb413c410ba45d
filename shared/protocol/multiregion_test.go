package protocol

import "testing"

func TestSameKey(t *testing.T) {
	const (
		use1 = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
		euw1 = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
	)
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{use1, use1, true},
		{use1, euw1, true},
		{use1, "arn:aws:kms:eu-west-1:111122223333:key/mrk-ffffabcd12ab34cd56ef1234567890ab", false},
		{use1, "arn:aws:kms:eu-west-1:444455556666:key/mrk-1234abcd12ab34cd56ef1234567890ab", false},
		{use1, "arn:aws-cn:kms:cn-north-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", false},
		{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
			"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", false},
		{use1, "not an arn", false},
	} {
		if got := SameKey(tc.a, tc.b); got != tc.want {
			t.Errorf("SameKey(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
