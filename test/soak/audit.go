package soak

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
	"github.com/keyferry/keyferry/test/sandbox"
)

// audit runs after the faults stop: it lets the system settle (sweeper),
// proves it still rotates every group, then checks every invariant.
func (r *soakRun) audit(ctx context.Context) {
	sb := r.sb
	r.logf("audit: faults off; settling")
	// Every agent of the pool that a fault left stopped starts again. A
	// restarted agent re-probes the HSM before it dials: on a loaded
	// 2-core CI machine that takes a while.
	r.agentMu.Lock()
	if err := sb.StartAgents(ctx, 90*time.Second); err != nil {
		r.violate("pool agents not connected after the fault phase: %v", err)
	}
	r.agentMu.Unlock()
	r.settle(ctx)
	r.checkLocksFree(ctx)
	// Liveness after the storm: every group rotates cleanly.
	last, err := sb.RotateAll(ctx, "schedule", 60*time.Second)
	if err != nil {
		r.violate("clean rotation of every group after the faults: %v", err)
	}
	for _, j := range last {
		if j != nil {
			r.jobs[j.ID] = true
		}
	}
	r.settle(ctx)
	r.checkJobs(ctx)
	r.checkKMS(ctx)
	r.checkGenerations(ctx)
	r.checkAuditChain(ctx)
	r.checkPlaintext()
	// Every connection the gateway dropped is gone, and every agent of the
	// pool said hello again on a new one (StartAgents above).
	r.mu.Lock()
	dropped := slices.Clone(r.dropped)
	r.mu.Unlock()
	for _, c := range sb.Gateway.Connections() {
		if slices.Contains(dropped, c.ID) {
			r.violate("connection %s was dropped but is still open", c.ID)
		}
	}
}

// settle sweeps (as the scheduled keepalive Lambda does) until no job is
// live, or until every retry a job can get has had its deadline. Jobs whose
// deadlines only a skewed clock can have set (further ahead than any step
// of an unskewed one) are not waited for: waitOutDeadlines handles them.
func (r *soakRun) settle(ctx context.Context) {
	e := r.sb.Deps.Engine
	step := e.RequestTTL + e.Skew + e.JobTimeout
	deadline := time.Now().Add(time.Duration(e.MaxAttempts+2) * step)
	for {
		_, _ = r.sb.Deps.Keepalive(ctx, nil)
		live, skewed := 0, 0
		for _, st := range store.LiveStates() {
			js, err := r.sb.Deps.Store.JobsInState(ctx, st, time.Now().Add(365*24*time.Hour))
			if err != nil {
				continue
			}
			live += len(js)
			for _, j := range js {
				if j.Deadline.After(time.Now().Add(step)) {
					skewed++
				}
			}
		}
		if live == 0 || ctx.Err() != nil {
			return
		}
		if skewed == live || time.Now().After(deadline) {
			r.waitOutDeadlines(ctx)
			return
		}
		time.Sleep(time.Second)
	}
}

// waitOutDeadlines finishes jobs whose deadlines lie ahead of the real
// clock: a clock-skew fault (+5 min) dates a job's deadline five minutes
// into the future, longer than the settle window. Rather than sleep, the
// control plane's clock is moved past each deadline in turn and the
// sweeper runs, exactly as the scheduled sweeper would later: a job gets
// its retries, then FAILS with "deadline exceeded" (a reason) if the agent
// refuses requests dated in its future. The clock goes back afterwards.
func (r *soakRun) waitOutDeadlines(ctx context.Context) {
	defer r.skew.Store(0)
	e := r.sb.Deps.Engine
	step := e.RequestTTL + e.Skew + e.JobTimeout + 6*time.Minute
	for i := 1; i <= e.MaxAttempts+2 && ctx.Err() == nil; i++ {
		r.skew.Store(int64(time.Duration(i) * step))
		_, _ = r.sb.Deps.Keepalive(ctx, nil)
		live := 0
		for _, st := range store.LiveStates() {
			js, err := r.sb.Deps.Store.JobsInState(ctx, st, time.Now().Add(365*24*time.Hour))
			if err == nil {
				live += len(js)
			}
		}
		r.logf("audit: control-plane clock +%s, sweep: %d jobs still live", time.Duration(i)*step, live)
		if live == 0 {
			return
		}
	}
}

var reasonNormaliser = regexp.MustCompile(`\d{4}-\d\d-\d\dT[0-9:.]+Z|[0-9a-f]{8}-[0-9a-f-]{27,}|arn:aws:kms:[^ "]+|[0-9a-f]{16,}|\d+(\.\d+)?(ms|s)\b|after \d+ attempts`)

// checkJobs: every job terminal; FAILED ones carry a reason.
func (r *soakRun) checkJobs(ctx context.Context) {
	reasons := map[string]int{}
	for id := range r.jobs {
		j, err := r.sb.Deps.Store.GetJob(ctx, id)
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				continue // a trigger refused before its job was recorded (e.g. a DynamoDB fault)
			}
			r.violate("job %s: read: %v", id, err)
			continue
		}
		switch j.State {
		case store.StateSucceeded:
			r.rep.JobsSucceeded++
		case store.StateSkipped:
			r.rep.JobsSkipped++
		case store.StateFailed:
			r.rep.JobsFailed++
			if strings.TrimSpace(j.Reason) == "" {
				r.violate("job %s (%s) FAILED without a reason", j.ID, j.Group)
			}
			reasons[reasonNormaliser.ReplaceAllString(j.Reason, "…")]++
		default:
			r.violate("job %s (%s) not terminal after the final sweep: %s (deadline %s)", j.ID, j.Group, j.State, j.Deadline.Format(time.RFC3339))
		}
	}
	// Jobs the soak did not start itself (keepalive re-imports) count too.
	for _, st := range store.LiveStates() {
		js, err := r.sb.Deps.Store.JobsInState(ctx, st, time.Now().Add(365*24*time.Hour))
		if err != nil {
			r.violate("list %s jobs: %v", st, err)
		}
		for _, j := range js {
			if !r.jobs[j.ID] {
				r.violate("job %s (%s, %s) not terminal after the final sweep: %s", j.ID, j.Group, j.Trigger, j.State)
			}
		}
	}
	r.rep.FailureReasons = reasons
}

// checkKMS: no alias on a key without material; no orphaned PendingImport key.
func (r *soakRun) checkKMS(ctx context.Context) {
	c := r.sb.KMS
	p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			r.violate("ListAliases: %v", err)
			return
		}
		for _, a := range page.Aliases {
			if a.TargetKeyId == nil || strings.HasPrefix(aws.ToString(a.AliasName), "alias/aws/") {
				continue
			}
			d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: a.TargetKeyId})
			if err != nil {
				r.violate("alias %s: DescribeKey: %v", aws.ToString(a.AliasName), err)
				continue
			}
			if st := d.KeyMetadata.KeyState; st == "PendingImport" || st == "PendingDeletion" || st == "PendingReplicaDeletion" {
				r.violate("alias %s points at key %s in state %s (no usable material)", aws.ToString(a.AliasName), aws.ToString(d.KeyMetadata.KeyId), st)
			}
		}
	}
	kp := kms.NewListKeysPaginator(c, &kms.ListKeysInput{})
	for kp.HasMorePages() {
		page, err := kp.NextPage(ctx)
		if err != nil {
			r.violate("ListKeys: %v", err)
			return
		}
		for _, k := range page.Keys {
			r.rep.KeysChecked++
			d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
			if err != nil {
				r.violate("DescribeKey %s: %v", aws.ToString(k.KeyId), err)
				continue
			}
			if d.KeyMetadata.KeyState != "PendingImport" {
				continue
			}
			tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: k.KeyId})
			if err != nil {
				r.violate("ListResourceTags %s: %v", aws.ToString(k.KeyId), err)
				continue
			}
			for _, t := range tags.Tags {
				if k := aws.ToString(t.TagKey); k == "keyferry:group" || k == "keyferry:job" {
					r.violate("orphaned PendingImport key %s (%s=%s) not scheduled for deletion", aws.ToString(d.KeyMetadata.KeyId), k, aws.ToString(t.TagValue))
					break
				}
			}
		}
	}
}

// checkAuditChain runs `keyferry-agent audit verify -pubkey` on the agent's
// audit log with the registered identity public key.
func (r *soakRun) checkAuditChain(ctx context.Context) {
	// Every agent of the pool keeps its own chain, signed by its own
	// identity key.
	files := map[string]string{sandbox.AgentID: filepath.Join(r.sb.Dir, "agent", "audit.jsonl")}
	for _, p := range r.sb.PoolAgents {
		files[p.ID] = filepath.Join(filepath.Dir(p.Config), "audit.jsonl")
	}
	r.rep.AuditRecords = 0
	for _, p := range r.sb.Groups.HSMPools {
		for _, a := range p.Agents {
			if path, ok := files[a.ID]; ok {
				r.checkAuditChainOf(ctx, a.ID, a.PublicKey, path)
				delete(files, a.ID)
			}
		}
	}
	for id := range files {
		r.violate("audit chain: agent %s is not registered in the pool", id)
	}
}

func (r *soakRun) checkAuditChainOf(ctx context.Context, id, pem, path string) {
	pubFile := filepath.Join(r.sb.Dir, id+"-identity.pem")
	if err := os.WriteFile(pubFile, []byte(pem), 0o600); err != nil {
		r.violate("audit chain of %s: %v", id, err)
		return
	}
	out, err := exec.CommandContext(ctx, r.sb.AgentBinary, "audit", "verify", "-pubkey", pubFile, path).CombinedOutput()
	if err != nil {
		r.violate("audit chain of %s does not verify: %v: %s", id, err, strings.TrimSpace(string(out)))
		return
	}
	m := regexp.MustCompile(`OK: (\d+) records`).FindSubmatch(out)
	if m == nil {
		r.violate("audit verify of %s printed no record count: %s", id, out)
		return
	}
	n, _ := strconv.Atoi(string(m[1]))
	r.rep.AuditRecords += n
	r.logf("audit chain of %s: %s", id, strings.TrimSpace(string(out)))
}

// materials returns the emulator's imported plaintexts (test-only accessor).
func (r *soakRun) materials() []kmsemu.ImportedMaterial {
	if r.sb.Emulator == nil {
		return nil
	}
	return r.sb.Emulator.ImportedMaterials()
}

// checkLocksFree: once no job is live, no group's lock may name a job.
// A lock naming a finished job would skip the group's every rotation for
// ever; the violation names the job, its state and its last transitions.
func (r *soakRun) checkLocksFree(ctx context.Context) {
	for _, g := range r.sb.Groups.Groups {
		head, err := r.sb.Deps.Store.GroupHead(ctx, g.Name)
		if err != nil || head.ActiveJob == "" {
			continue
		}
		j, err := r.sb.Deps.Store.GetJob(ctx, head.ActiveJob)
		if err != nil {
			r.violate("group %s: lock names job %s, which cannot be read: %v", g.Name, head.ActiveJob, err)
			continue
		}
		if !j.State.Terminal() {
			r.logf("audit: group %s: job %s still %s after settling", g.Name, j.ID, j.State)
			continue
		}
		h := j.History
		if len(h) > 6 {
			h = h[len(h)-6:]
		}
		r.violate("group %s: lock still names job %s, which is %s (%s); last transitions %+v", g.Name, j.ID, j.State, j.Reason, h)
	}
}
