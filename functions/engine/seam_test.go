package engine_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyferry/keyferry/test/gotool"
)

// TestReleaseBuildCarriesNoTestSeam: the engine's crash-injection seam
// (Engine.AfterStep, ErrCrash) is compiled only with -tags keyferrytest.
// Without the tag the package builds seam_release.go and not
// seam_keyferrytest.go, and the Lambda bootstraps built as make
// build-lambdas builds them (linux/arm64, CGO_ENABLED=0, -tags
// lambda.norpc, -trimpath; symbols kept here so that nm can read them)
// hold neither the hook's symbols nor its strings.
func TestReleaseBuildCarriesNoTestSeam(t *testing.T) {
	release, tagged := gotool.GoFiles(t, "./functions/engine"), gotool.GoFiles(t, "./functions/engine", "keyferrytest")
	if slices.Contains(release, "seam_keyferrytest.go") || !slices.Contains(release, "seam_release.go") {
		t.Errorf("the release build of the engine compiles %s", release)
	}
	if !slices.Contains(tagged, "seam_keyferrytest.go") || slices.Contains(tagged, "seam_release.go") {
		t.Errorf("the keyferrytest build of the engine compiles %s", tagged)
	}
	if testing.Short() {
		t.Skip("-short: the bootstraps are not built")
	}
	dir := t.TempDir()
	gotool.Run(t, []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"},
		"build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-o", dir+string(os.PathSeparator), "./functions/cmd/...")
	bins, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	engines := 0
	for _, b := range bins {
		path := filepath.Join(dir, b.Name())
		syms := gotool.Run(t, nil, "tool", "nm", path)
		if !bytes.Contains(syms, []byte("keyferry/functions/engine.")) {
			continue // this function does not run the engine
		}
		engines++
		for _, bad := range []string{"engine.ErrCrash", "testSeam).afterStep"} {
			if bytes.Contains(syms, []byte(bad)) {
				t.Errorf("bootstrap %s has the symbol %s", b.Name(), bad)
			}
		}
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"engine: injected crash", "AfterStep"} {
			if bytes.Contains(bin, []byte(bad)) {
				t.Errorf("bootstrap %s contains %q", b.Name(), bad)
			}
		}
	}
	if engines == 0 {
		t.Fatalf("none of the %d bootstraps links the engine: nothing was checked", len(bins))
	}
	t.Logf("%d of %d bootstraps link the engine; none carries the test seam", engines, len(bins))
}
