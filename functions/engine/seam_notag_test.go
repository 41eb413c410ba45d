//go:build !keyferrytest

package engine_test

import "testing"

// TestCrashInjectionNeedsTheTag says, in an untagged run, which tests did
// not compile: those of crash_test.go need the engine's test seam.
func TestCrashInjectionNeedsTheTag(t *testing.T) {
	t.Skip("the crash-injection tests (crash_test.go: TestCrashBetweenEverySteps, TestExpiredImportParametersAskAgain, " +
		"TestInvariantNoAliasOnKeyWithoutMaterial_FailureAfterAliasMove, TestWorkerKilledMidStepResumesFromQueue) need -tags keyferrytest")
}
