package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyferry/keyferry/functions/store"
)

// agentView is one registered agent of a pool (with its connection, if any).
type agentView struct {
	Pool         string `json:"pool"`
	AgentID      string `json:"agent_id"`
	Connected    bool   `json:"connected"`
	ConnectionID string `json:"connection_id,omitempty"`
	Verified     bool   `json:"verified"` // a verified hello was received
	// Draining: the agent said it is stopping (SIGTERM); it gets no new requests.
	Draining bool `json:"draining"`
	// Gone: a post to it failed, or it was silent past its heartbeat lapse.
	Gone        bool      `json:"gone"`
	ConnectedAt time.Time `json:"connected_at,omitzero"`
	// LastSeen is its last heartbeat (or hello).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Outstanding counts the wrap requests awaiting its result.
	Outstanding int `json:"outstanding_requests"`
}

type groupStatus struct {
	Name            string     `json:"name"`
	Mode            string     `json:"mode"`
	KeySpec         string     `json:"key_spec"`
	Alias           string     `json:"alias"`
	KeyARN          string     `json:"key_arn,omitempty"`
	KeyMaterialID   string     `json:"key_material_id,omitempty"`
	Generation      int64      `json:"generation"`
	AgeSeconds      int64      `json:"age_seconds,omitempty"`
	Schedule        string     `json:"schedule"`
	NextRotation    *time.Time `json:"next_rotation,omitempty"`
	MaterialExpires *time.Time `json:"material_expires,omitempty"`
	Killed          bool       `json:"killed"`
	ActiveJob       string     `json:"active_job,omitempty"`
	LastJob         *jobView   `json:"last_job,omitempty"`
}

type statusView struct {
	At     time.Time     `json:"at"`
	Agents []agentView   `json:"agents"`
	Groups []groupStatus `json:"groups"`
}

func cmdStatus(ctx context.Context, a *app, args []string) error {
	fs := a.flags("status", "status [--groups FILE] [--json]",
		"Shows each registered agent of each HSM pool (connected, draining, last heartbeat, outstanding wrap requests) and, per group, the current key, generation, age,\nnext scheduled rotation, material expiry and last job. Needs the deployment's groups file.")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("status takes no arguments")
	}
	cfg, err := a.deployment(true)
	if err != nil {
		return err
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	v := statusView{At: now, Agents: []agentView{}, Groups: []groupStatus{}}
	requested, err := st.JobsInState(ctx, store.StateRequested, now.Add(365*24*time.Hour))
	if err != nil {
		return err
	}
	outstanding := map[string]int{}
	for _, j := range requested {
		outstanding[j.ConnectionID]++
	}
	for _, p := range cfg.HSMPools {
		conns, err := st.ConnectionsInPool(ctx, p.Name)
		if err != nil {
			return err
		}
		listed := map[string]bool{}
		for _, c := range conns {
			listed[c.AgentID] = true
			v.Agents = append(v.Agents, agentView{Pool: c.Pool, AgentID: c.AgentID, Connected: true, ConnectionID: c.ID, Verified: c.Hello,
				Draining: !c.DrainingAt.IsZero(), Gone: !c.GoneAt.IsZero(), ConnectedAt: c.ConnectedAt, LastSeen: c.LastSeen, Outstanding: outstanding[c.ID]})
		}
		for _, ag := range p.Agents {
			if !listed[ag.ID] {
				v.Agents = append(v.Agents, agentView{Pool: p.Name, AgentID: ag.ID})
			}
		}
	}
	jobs, err := listJobs(ctx, st, "", nil)
	if err != nil {
		return err
	}
	for i := range cfg.Groups {
		g := &cfg.Groups[i]
		gs := groupStatus{Name: g.Name, Mode: string(g.Mode), KeySpec: string(g.KeySpec), Alias: g.Alias, Schedule: g.Schedule}
		gens, err := st.Generations(ctx, g.Name)
		if err != nil {
			return err
		}
		var cur *store.Generation
		for _, x := range gens {
			if x.State == store.GenCurrent && (cur == nil || x.Generation > cur.Generation) {
				cur = x
			}
			if x.State != store.GenKilled && !x.ExpiresAt.IsZero() && (gs.MaterialExpires == nil || x.ExpiresAt.Before(*gs.MaterialExpires)) {
				t := x.ExpiresAt
				gs.MaterialExpires = &t
			}
		}
		var last time.Time
		if cur != nil {
			gs.KeyARN, gs.KeyMaterialID, gs.Generation = cur.KeyARN, cur.KeyMaterialID, cur.Generation
			last = cur.CreatedAt
			if !cur.RotatedAt.IsZero() {
				last = cur.RotatedAt
			}
			gs.AgeSeconds = int64(now.Sub(last) / time.Second)
		}
		if next, ok := nextRun(g.Schedule, last, now); ok {
			gs.NextRotation = &next
		}
		head, err := st.GroupHead(ctx, g.Name)
		if err != nil {
			return err
		}
		gs.Killed, gs.ActiveJob = head.Killed, head.ActiveJob
		for _, j := range jobs {
			if j.Group == g.Name {
				gs.LastJob = viewJob(j)
				gs.LastJob.History = nil
				break
			}
		}
		v.Groups = append(v.Groups, gs)
	}
	a.emit(v, func(w io.Writer) { printStatus(w, v) })
	return nil
}

func printStatus(w io.Writer, v statusView) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tPOOL\tSTATE\tVERIFIED\tCONNECTED\tLAST HEARTBEAT\tOUTSTANDING")
	if len(v.Agents) == 0 {
		fmt.Fprintln(tw, "(none registered)\t\t\t\t\t\t")
	}
	for _, ag := range v.Agents {
		if !ag.Connected {
			fmt.Fprintf(tw, "%s\t%s\tdisconnected\t-\t-\t-\t-\n", ag.AgentID, ag.Pool)
			continue
		}
		state := "connected"
		switch {
		case ag.Gone:
			state = "gone"
		case ag.Draining:
			state = "draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s ago\t%d\n", ag.AgentID, ag.Pool, state, ag.Verified, stamp(ag.ConnectedAt), age(v.At.Sub(ag.LastSeen)), ag.Outstanding)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tMODE\tSPEC\tKEY\tGEN\tAGE\tNEXT ROTATION\tMATERIAL EXPIRES\tLAST JOB\tSTATE")
	for _, g := range v.Groups {
		next, exp, lj, ls := "-", "-", "-", "-"
		if g.NextRotation != nil {
			next = stamp(*g.NextRotation)
		} else if g.Schedule != "" {
			next = g.Schedule
		}
		if g.MaterialExpires != nil {
			exp = stamp(*g.MaterialExpires)
		}
		if g.LastJob != nil {
			lj, ls = g.LastJob.ID, g.LastJob.State
		}
		if g.Killed {
			ls += " (KILLED)"
		}
		ag := "-"
		if g.Generation > 0 {
			ag = age(time.Duration(g.AgeSeconds) * time.Second)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.Mode, g.KeySpec, shortARN(g.KeyARN), g.Generation, ag, next, exp, lj, ls)
	}
	tw.Flush()
}

func shortARN(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return orDash(s)
}

// nextRun evaluates rate(...) and at(...) schedules (EventBridge Scheduler
// syntax, already validated by shared/groups): the next run after last (or
// now when there was none). cron(...) is left to the Scheduler (false).
func nextRun(expr string, last, now time.Time) (time.Time, bool) {
	switch {
	case strings.HasPrefix(expr, "rate(") && strings.HasSuffix(expr, ")"):
		f := strings.Fields(expr[5 : len(expr)-1])
		if len(f) != 2 {
			return time.Time{}, false
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			return time.Time{}, false
		}
		unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(f[1], "s")]
		if unit == 0 {
			return time.Time{}, false
		}
		if last.IsZero() {
			last = now
		}
		return last.Add(time.Duration(n) * unit), true
	case strings.HasPrefix(expr, "at(") && strings.HasSuffix(expr, ")"):
		t, err := time.Parse("2006-01-02T15:04:05", expr[3:len(expr)-1])
		return t, err == nil
	}
	return time.Time{}, false
}
