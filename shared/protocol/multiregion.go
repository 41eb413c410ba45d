package protocol

import "strings"

// SameKey reports whether two KMS key ARNs name the same key for the
// agent's pin: the same ARN, or the primary and replicas of one multi-Region
// key. Related multi-Region keys "have the same key ID and key material"
// and live in different Regions of one partition and account (KMS API
// reference, ReplicateKey; their key ids start with "mrk-"), so an HSM key
// pinned to one of them may be wrapped for every other Region's copy, and
// never for an unrelated key. Malformed ARNs are never the same key.
func SameKey(a, b string) bool {
	if a == b {
		return true
	}
	ka, err := parseKeyARN("key_arn", a)
	if err != nil {
		return false
	}
	kb, err := parseKeyARN("key_arn", b)
	if err != nil {
		return false
	}
	return strings.HasPrefix(ka.KeyID, "mrk-") && ka.KeyID == kb.KeyID &&
		ka.Partition == kb.Partition && ka.Account == kb.Account
}
