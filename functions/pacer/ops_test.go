package pacer

import "testing"

// TestOpsCoverQuotas: every operation with a published quota has an Op, and
// the only Ops paced at the default quota are the ones ops.go names.
func TestOpsCoverQuotas(t *testing.T) {
	defaulted := map[Op]bool{OpListKeys: true, OpListResourceTags: true, OpPutKeyPolicy: true, OpReplicateKey: true}
	ops := map[string]bool{}
	for _, op := range Ops() {
		if ops[string(op)] {
			t.Errorf("%s listed twice", op)
		}
		ops[string(op)] = true
		if _, ok := Quotas[string(op)]; !ok && !defaulted[op] {
			t.Errorf("%s has no quota in Quotas and is not documented as default-paced", op)
		}
	}
	for name := range Quotas {
		if !ops[name] {
			t.Errorf("Quotas[%q] has no Op constant", name)
		}
	}
}
