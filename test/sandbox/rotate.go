package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
)

// Trigger fires a rotation of group the way EventBridge Scheduler would
// (payload {"group": ..., "trigger": ...}) and returns the rotate function's result.
func (s *Sandbox) Trigger(ctx context.Context, group, trigger, id string) (handlers.RotateResult, error) {
	payload, _ := json.Marshal(handlers.SchedulePayload{Group: group, Trigger: trigger, ID: id})
	return s.RotatePayload(ctx, payload)
}

// Terminal reports whether a job state is final.
func Terminal(st store.State) bool {
	return st == store.StateSucceeded || st == store.StateFailed || st == store.StateSkipped
}

// WaitJob polls the job until it is terminal or timeout passes.
func (s *Sandbox) WaitJob(ctx context.Context, id string, timeout time.Duration) (*store.Job, error) {
	deadline := time.Now().Add(timeout)
	for {
		j, err := s.Deps.Store.GetJob(ctx, id)
		if err == nil && Terminal(j.State) {
			return j, nil
		}
		if time.Now().After(deadline) {
			if j != nil {
				return j, fmt.Errorf("sandbox: job %s still %s after %s", id, j.State, timeout)
			}
			return nil, fmt.Errorf("sandbox: job %s not terminal after %s: %v", id, timeout, err)
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// RotateAll rotates every group once (in parallel) and waits for each job.
func (s *Sandbox) RotateAll(ctx context.Context, trigger string, timeout time.Duration) (map[string]*store.Job, error) {
	type res struct {
		group string
		job   *store.Job
		err   error
	}
	ch := make(chan res, len(s.Groups.Groups))
	stamp := time.Now().UTC().Format("20060102T150405.000")
	for _, g := range s.Groups.Groups {
		go func() {
			r, err := s.Trigger(ctx, g.Name, trigger, trigger+"-"+stamp)
			if err != nil {
				ch <- res{g.Name, nil, err}
				return
			}
			if r.JobID == "" {
				ch <- res{g.Name, nil, fmt.Errorf("no job started: %s %s", r.Outcome, r.Reason)}
				return
			}
			j, err := s.WaitJob(ctx, r.JobID, timeout)
			ch <- res{g.Name, j, err}
		}()
	}
	out := map[string]*store.Job{}
	var errs []error
	for range s.Groups.Groups {
		r := <-ch
		out[r.group] = r.job
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.group, r.err))
		} else if r.job.State != store.StateSucceeded {
			errs = append(errs, fmt.Errorf("%s: job %s %s: %s", r.group, r.job.ID, r.job.State, r.job.Reason))
		}
	}
	return out, errors.Join(errs...)
}

// GroupSummary is one row of the live table and of --json.
type GroupSummary struct {
	Name          string `json:"name"`
	Mode          string `json:"mode"`
	KeySpec       string `json:"key_spec"`
	Alias         string `json:"alias"`
	KeyARN        string `json:"key_arn"`
	KeyMaterialID string `json:"key_material_id"`
	Generations   int    `json:"generations"`
	LastJobID     string `json:"last_job_id,omitempty"`
	LastJobState  string `json:"last_job_state"`
	// LastJobAgent is the agent of the pool that wrapped the last job's
	// key material (the job's agent when it ended).
	LastJobAgent  string `json:"last_job_agent,omitempty"`
	LastJobReason string `json:"last_job_reason,omitempty"`
	KMSKeyState   string `json:"kms_key_state,omitempty"`
	Verified      bool   `json:"verified"`
	// Replicas are a multi-Region group's replica Regions (regions.go);
	// the group is verified only when each of them is.
	Replicas []ReplicaSummary `json:"replicas,omitempty"`
}

// AgentSummary is one agent of the sandbox pool in --json.
type AgentSummary struct {
	ID        string `json:"id"`
	Pool      string `json:"pool"`
	Connected bool   `json:"connected"` // a live connection whose hello verified
	Draining  bool   `json:"draining,omitempty"`
	// JobsWrapped counts the summary's succeeded jobs this agent wrapped.
	JobsWrapped int `json:"jobs_wrapped"`
}

// Summary is the --json document.
type Summary struct {
	Agents    []AgentSummary `json:"agents"`
	Groups    []GroupSummary `json:"groups"`
	Endpoints Endpoints      `json:"endpoints"`
}

// Summarize reads the store and KMS. A group is verified when its last job
// succeeded (the engine verified the import before switching), the alias
// resolves to the latest generation's key, and that key is Enabled in KMS.
func (s *Sandbox) Summarize(ctx context.Context, last map[string]*store.Job) (Summary, error) {
	sum := Summary{Endpoints: s.Endpoints}
	conns, err := s.Deps.Store.ConnectionsInPool(ctx, Pool)
	if err != nil {
		return sum, err
	}
	for _, id := range s.AgentIDs() {
		a := AgentSummary{ID: id, Pool: Pool}
		for _, c := range conns {
			if c.AgentID == id && c.Hello && c.GoneAt.IsZero() {
				a.Connected = true
				a.Draining = a.Draining || !c.DrainingAt.IsZero()
			}
		}
		for _, j := range last {
			if j != nil && j.AgentID == id && j.State == store.StateSucceeded {
				a.JobsWrapped++
			}
		}
		sum.Agents = append(sum.Agents, a)
	}
	for _, g := range s.Groups.Groups {
		row := GroupSummary{Name: g.Name, Mode: string(g.Mode), KeySpec: string(g.KeySpec), Alias: g.Alias}
		gens, err := s.Deps.Store.Generations(ctx, g.Name)
		if err != nil {
			return sum, err
		}
		row.Generations = len(gens)
		if j := last[g.Name]; j != nil {
			row.LastJobID, row.LastJobState, row.LastJobReason, row.LastJobAgent = j.ID, string(j.State), j.Reason, j.AgentID
		}
		if len(gens) > 0 {
			latest := gens[len(gens)-1]
			for _, x := range gens {
				if x.Generation > latest.Generation {
					latest = x
				}
			}
			row.KeyARN, row.KeyMaterialID = latest.KeyARN, latest.KeyMaterialID
			d, err := s.KMS.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(g.Alias)})
			if err == nil {
				row.KMSKeyState = string(d.KeyMetadata.KeyState)
				row.Verified = row.LastJobState == string(store.StateSucceeded) &&
					aws.ToString(d.KeyMetadata.Arn) == latest.KeyARN && d.KeyMetadata.KeyState == "Enabled"
			}
			if g.MultiRegion() {
				row.Replicas = s.replicaSummaries(ctx, &g, latest.KeyARN)
				for _, r := range row.Replicas {
					row.Verified = row.Verified && r.Verified
				}
			}
		}
		sum.Groups = append(sum.Groups, row)
	}
	return sum, nil
}
