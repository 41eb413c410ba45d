//go:build keyferrytest

package engine

import (
	"errors"

	"github.com/keyferry/keyferry/functions/store"
)

// The crash-injection seam of tests, compiled only with -tags keyferrytest
// (make test passes it); a release build compiles seam_release.go instead,
// whose hook does nothing and which carries neither AfterStep nor ErrCrash
// (TestReleaseBuildCarriesNoTestSeam).

// ErrCrash is what AfterStep hooks return in crash-injection tests.
var ErrCrash = errors.New("engine: injected crash")

// testSeam is embedded in Engine.
type testSeam struct {
	// AfterStep, when set, is called after each committed transition (and
	// after an accepted wrap_result); an error aborts the run there,
	// simulating a crash.
	AfterStep func(j *store.Job) error
}

func (s *testSeam) afterStep(j *store.Job) error {
	if s.AfterStep == nil {
		return nil
	}
	return s.AfterStep(j)
}
