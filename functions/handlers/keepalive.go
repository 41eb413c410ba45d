package handlers

import (
	"context"
	"encoding/json"
	"errors"
)

// KeepaliveResult summarises one keepalive+sweeper run.
type KeepaliveResult struct {
	Reimports int `json:"reimports"`
	Retried   int `json:"retried"`
	Failed    int `json:"failed"`
}

// Keepalive re-imports expiring material, then sweeps overdue jobs. The
// payload (a Scheduler input) is ignored.
func (d *Deps) Keepalive(ctx context.Context, _ json.RawMessage) (any, error) {
	jobs, kerr := d.Engine.Keepalive(ctx)
	retried, failed, serr := d.Engine.Sweep(ctx)
	res := KeepaliveResult{Reimports: len(jobs), Retried: retried, Failed: failed}
	d.log().InfoContext(ctx, "keepalive run", "reimports", res.Reimports, "retried", retried, "failed", failed)
	return res, errors.Join(kerr, serr)
}
