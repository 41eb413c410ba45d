package keyspec

import "fmt"

// noMultiRegion lists the importable key specs KMS does not make
// multi-Region keys of, with the reason. KMS API reference (botocore's
// service model 2014-11-01), ImportKeyMaterial: "You can also import key
// material into a multi-Region key of any supported type"; CreateKey
// MultiRegion: "You can create a symmetric or asymmetric multi-Region key,
// and you can create a multi-Region key with imported key material". So no
// spec of the table is excluded today; a spec added to the table that KMS
// does not allow multi-Region for gets its entry here, the one home of the
// rule (groups validation reads it).
var noMultiRegion = map[Spec]string{}

// CheckMultiRegion reports whether KMS allows a multi-Region key of spec
// with imported material.
func CheckMultiRegion(s Spec) error {
	if why, ok := noMultiRegion[s]; ok {
		return fmt.Errorf("key spec %s cannot be multi-Region: %s", s, why)
	}
	if _, err := Lookup(s); err != nil {
		return err
	}
	return nil
}
