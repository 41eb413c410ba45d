package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/test/gotool"
)

// TestDaemonBuildsWithoutCgo: the daemon, its tests included, type-checks
// with CGO_ENABLED=0 and pulls in nothing of the PKCS#11 binding: cgo stays
// in agent/hsm's module files and the agent binary (agent/cmd), which are
// the only parts that talk to a token.
func TestDaemonBuildsWithoutCgo(t *testing.T) {
	run := func(args ...string) string {
		t.Helper()
		return string(gotool.Run(t, []string{"CGO_ENABLED=0"}, args...))
	}
	deps := strings.Fields(run("list", "-deps", "-test", "-f", "{{.ImportPath}}", "./agent/daemon"))
	if !slices.Contains(deps, "github.com/keyferry/keyferry/agent/daemon") {
		t.Fatalf("go list -deps did not list the daemon itself: %v", deps)
	}
	if slices.Contains(deps, "github.com/miekg/pkcs11") {
		t.Fatal("the cgo-free daemon build depends on github.com/miekg/pkcs11 (cgo)")
	}
	run("vet", "./agent/daemon")
}
