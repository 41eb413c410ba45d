package engine_test

import (
	"fmt"
	"testing"
)

func TestRotationSymmetricAliasSwap(t *testing.T) {
	g := uniq("sym")
	h := newHarness(t, fmt.Sprintf("  - name: %s\n    key_spec: SYMMETRIC_DEFAULT\n    mode: alias-swap\n    alias: alias/%s\n", g, g))
	j := h.rotate(g, "t1")
	h.requireState(j, "SUCCEEDED")
}
