//go:build cgo

package hsm_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyferry/keyferry/test/gotool"
)

// TestReleaseAgentCarriesNoFaultModule (cgo only: the release agent is a
// cgo build, and under CGO_ENABLED=0 the fault files drop out with the rest
// of the PKCS#11 code): the HSM fault injector
// (faultmodule.go, faults_hsmfault.go) is compiled only with -tags
// hsmfault (the soak's agent and the tests). Without the tag the package
// leaves both files out, and a release keyferry-agent holds neither the
// injector's symbols nor its log message.
func TestReleaseAgentCarriesNoFaultModule(t *testing.T) {
	release, tagged := gotool.GoFiles(t, "./agent/hsm"), gotool.GoFiles(t, "./agent/hsm", "hsmfault")
	for _, f := range []string{"faultmodule.go", "faults_hsmfault.go"} {
		if slices.Contains(release, f) {
			t.Errorf("the release build of agent/hsm compiles %s", f)
		}
		if !slices.Contains(tagged, f) {
			t.Errorf("the hsmfault build of agent/hsm leaves out %s", f)
		}
	}
	if testing.Short() {
		t.Skip("-short: the agent is not built")
	}
	bin := filepath.Join(t.TempDir(), "keyferry-agent")
	gotool.Run(t, nil, "build", "-trimpath", "-o", bin, "./agent/cmd/keyferry-agent")
	syms := gotool.Run(t, nil, "tool", "nm", bin)
	if !bytes.Contains(syms, []byte("keyferry/agent/hsm.")) {
		t.Fatal("the agent binary does not link agent/hsm: nothing was checked")
	}
	if bytes.Contains(syms, []byte("hsm.faultModule")) {
		t.Error("the release agent has hsm.faultModule's symbols")
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("hsm fault injected")) || bytes.Contains(b, []byte("KEYFERRY_HSM_FAULTS")) {
		t.Error("the release agent carries the fault injector's strings")
	}
}
