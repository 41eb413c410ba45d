package engine

import (
	"context"

	"github.com/keyferry/keyferry/functions/store"
)

// Crash-recovery flags. Each is set on the job, and saved, before the call
// it guards: a job resumed after a crash (or a lost answer) between the
// call and the next transition knows the call may have taken effect, and
// looks for its effect instead of repeating it blindly. attempt is the only
// writer of these flags (TestRecoveryFlagsOnlyWrittenByAttempt).
type recoveryFlag struct {
	name  string
	field func(j *store.Job) *bool
}

var (
	// flagCreateKey guards CreateKey: a resumed job looks for the key it
	// may have created (tag keyferry:job) before making another.
	flagCreateKey = recoveryFlag{"create_key_attempted", func(j *store.Job) *bool { return &j.CreateKeyAttempted }}
	// flagImportSent guards the first in-place NEW_KEY_MATERIAL import:
	// from then on the key's pending material can only be this job's.
	flagImportSent = recoveryFlag{"import_sent", func(j *store.Job) *bool { return &j.ImportSent }}
	// flagAliasMove guards UpdateAlias/CreateAlias of the group's alias
	// (in any Region): from then on the key may have served traffic, so a
	// failed job's cleanup never deletes it.
	flagAliasMove = recoveryFlag{"alias_move_attempted", func(j *store.Job) *bool { return &j.AliasMoveAttempted }}
)

// attempt records f on j durably (store.Save, version-checked; once: a
// flag already set is not written again), then runs call. An error saving
// the flag is returned as it is and call does not run (j is unchanged);
// otherwise attempt returns call's error.
func (e *Engine) attempt(ctx context.Context, j *store.Job, f recoveryFlag, call func() error) error {
	if p := f.field(j); !*p {
		*p = true
		if err := e.Store.Save(ctx, j); err != nil {
			*p = false
			return err
		}
		e.log().DebugContext(ctx, "recovery flag recorded", "job", j.ID, "flag", f.name)
	}
	return call()
}
