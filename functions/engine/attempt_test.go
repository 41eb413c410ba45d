package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/dynamotest"
)

// TestAttemptRecordsFlagBeforeTheCall: for each recovery flag, the call
// runs only once the flag is stored; a flag that cannot be stored (the job
// changed meanwhile) stops the call and leaves the caller's job without
// it; a flag already set is not written again.
func TestAttemptRecordsFlagBeforeTheCall(t *testing.T) {
	ctx := context.Background()
	st := store.New(dynamotest.Client(t), dynamotest.Tables(t))
	e := &Engine{Store: st}
	for _, f := range []recoveryFlag{flagCreateKey, flagImportSent, flagAliasMove} {
		t.Run(f.name, func(t *testing.T) {
			j, _, err := st.StartJob(ctx, &store.Job{Group: "g-" + f.name, Kind: store.KindRotate, Trigger: "operator", TriggerID: "t", Deadline: time.Now().Add(time.Hour)}, 0)
			if err != nil {
				t.Fatal(err)
			}
			stale := *j
			calls := 0
			err = e.attempt(ctx, j, f, func() error {
				calls++
				have, err := st.GetJob(ctx, j.ID)
				if err != nil {
					return err
				}
				if !*f.field(have) {
					t.Errorf("the call ran before %s was stored", f.name)
				}
				return nil
			})
			if err != nil || calls != 1 || !*f.field(j) {
				t.Fatalf("attempt: err %v, %d calls, flag %v", err, calls, *f.field(j))
			}
			v := j.Version
			callErr := errors.New("the call's own error")
			if err := e.attempt(ctx, j, f, func() error { calls++; return callErr }); err != callErr || calls != 2 || j.Version != v {
				t.Errorf("second attempt: err %v (want the call's), %d calls, version %d -> %d (want no write)", err, calls, v, j.Version)
			}
			// stale was read before the first attempt stored the flag.
			err = e.attempt(ctx, &stale, f, func() error { calls++; return nil })
			if !errors.Is(err, store.ErrConflict) || calls != 2 || *f.field(&stale) {
				t.Errorf("attempt on a stale job: err %v (want ErrConflict), %d calls (want no new one), flag %v (want unset)", err, calls, *f.field(&stale))
			}
		})
	}
}

// TestRecoveryFlagsOnlyWrittenByAttempt: no code of the functions but
// attempt.go sets a recovery flag.
func TestRecoveryFlagsOnlyWrittenByAttempt(t *testing.T) {
	set := regexp.MustCompile(`\.(CreateKeyAttempted|ImportSent|AliasMoveAttempted)\s*(=[^=]|,)|&\w+\.(CreateKeyAttempted|ImportSent|AliasMoveAttempted)\b|\b(CreateKeyAttempted|ImportSent|AliasMoveAttempted):\s`)
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		if filepath.Base(path) == "attempt.go" && filepath.Base(filepath.Dir(path)) == "engine" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := set.FindString(string(b)); m != "" {
			t.Errorf("%s writes a recovery flag (%q): only Engine.attempt may (attempt.go)", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
