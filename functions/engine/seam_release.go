//go:build !keyferrytest

package engine

import "github.com/keyferry/keyferry/functions/store"

// testSeam is the crash-injection seam of tests (seam_keyferrytest.go):
// in a release build it is empty and its hook does nothing.
type testSeam struct{}

func (*testSeam) afterStep(*store.Job) error { return nil }
