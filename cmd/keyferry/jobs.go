package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyferry/keyferry/functions/store"
)

// jobView is a job without its blobs (wrapped material, import token, ...).
type jobView struct {
	ID            string             `json:"id"`
	Group         string             `json:"group"`
	Kind          string             `json:"kind"`
	Trigger       string             `json:"trigger"`
	TriggerID     string             `json:"trigger_id"`
	State         string             `json:"state"`
	Reason        string             `json:"reason,omitempty"`
	Mode          string             `json:"mode,omitempty"`
	Generation    int64              `json:"generation,omitempty"`
	KeyARN        string             `json:"key_arn,omitempty"`
	KeyMaterialID string             `json:"key_material_id,omitempty"`
	HSMLabel      string             `json:"hsm_label,omitempty"`
	AgentID       string             `json:"agent_id,omitempty"`
	Attempts      int                `json:"attempts"`
	CreatedAt     time.Time          `json:"created_at"`
	UpdatedAt     time.Time          `json:"updated_at"`
	Deadline      time.Time          `json:"deadline"`
	History       []store.Transition `json:"history"`
}

func viewJob(j *store.Job) *jobView {
	return &jobView{
		ID: j.ID, Group: j.Group, Kind: string(j.Kind), Trigger: j.Trigger, TriggerID: j.TriggerID,
		State: string(j.State), Reason: j.Reason, Mode: string(j.Mode), Generation: j.Generation, KeyARN: j.KeyARN,
		KeyMaterialID: j.KeyMaterialID, HSMLabel: j.HSMLabel, AgentID: j.AgentID, Attempts: j.Attempts,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, Deadline: j.Deadline, History: j.History,
	}
}

func allStates() []store.State {
	return append(store.LiveStates(), store.StateSucceeded, store.StateFailed, store.StateSkipped)
}

// listJobs reads the jobs in the given states (all when empty) through the
// by_state index, newest first, optionally of one group.
func listJobs(ctx context.Context, st *store.Store, group string, states []store.State) ([]*store.Job, error) {
	if len(states) == 0 {
		states = allStates()
	}
	far := time.Now().AddDate(100, 0, 0)
	var out []*store.Job
	for _, s := range states {
		js, err := st.JobsInState(ctx, s, far)
		if err != nil {
			return nil, err
		}
		for _, j := range js {
			if group == "" || j.Group == group {
				out = append(out, j)
			}
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.After(out[b].CreatedAt) })
	return out, nil
}

func parseState(s string) (store.State, error) {
	u := store.State(strings.ToUpper(s))
	for _, x := range allStates() {
		if x == u {
			return u, nil
		}
	}
	names := make([]string, 0, 12)
	for _, x := range allStates() {
		names = append(names, string(x))
	}
	return "", usageErrorf("unknown job state %q (want one of %s)", s, strings.Join(names, ", "))
}

func cmdJobs(ctx context.Context, a *app, args []string) error {
	fs := a.flags("jobs", "jobs [--group G] [--state S] [--limit 20] [--watch [--interval 2s] [--count N]] [--json]",
		"Lists jobs newest first. --watch refreshes until interrupted (or --count refreshes); with --json each\nrefresh is one JSON document on its own line.")
	group := fs.String("group", "", "only this group's jobs")
	state := fs.String("state", "", "only jobs in this state (PENDING ... SUCCEEDED, FAILED, SKIPPED; \"live\" for every non-terminal state)")
	limit := fs.Int("limit", 20, "at most this many jobs (0: all)")
	watch := fs.Bool("watch", false, "refresh until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval of --watch")
	count := fs.Int("count", 0, "with --watch: stop after this many refreshes (0: until interrupted)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("jobs takes no arguments (did you mean keyferry job ID?)")
	}
	var states []store.State
	switch {
	case strings.EqualFold(*state, "live"):
		states = store.LiveStates()
	case *state != "":
		s, err := parseState(*state)
		if err != nil {
			return err
		}
		states = []store.State{s}
	}
	if *group != "" {
		if _, err := a.checkGroup(*group); err != nil {
			return err
		}
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	for n := 1; ; n++ {
		js, err := listJobs(ctx, st, *group, states)
		if err != nil {
			return err
		}
		if *limit > 0 && len(js) > *limit {
			js = js[:*limit]
		}
		views := make([]*jobView, 0, len(js))
		for _, j := range js {
			views = append(views, viewJob(j))
		}
		doc := struct {
			At   time.Time  `json:"at"`
			Jobs []*jobView `json:"jobs"`
		}{time.Now().UTC(), views}
		if *watch && a.asJSON {
			writeJSONLine(a.stdout, doc)
		} else {
			if *watch {
				fmt.Fprintf(a.stdout, "\n%s\n", doc.At.Format(time.TimeOnly))
			}
			a.emit(doc, func(w io.Writer) { printJobs(w, views) })
		}
		if !*watch || (*count > 0 && n >= *count) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func printJobs(w io.Writer, js []*jobView) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tGROUP\tKIND\tTRIGGER\tSTATE\tGEN\tCREATED\tUPDATED\tREASON")
	for _, j := range js {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Group, j.Kind, j.Trigger, j.State, j.Generation,
			j.CreatedAt.Format(time.DateTime), j.UpdatedAt.Format(time.TimeOnly), truncate(j.Reason, 60))
	}
	tw.Flush()
}

func cmdJob(ctx context.Context, a *app, args []string) error {
	fs := a.flags("job", "job ID [--json]", "Shows one job with its full state history.")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("job: want exactly one job ID")
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	j, err := st.GetJob(ctx, pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return notFoundf("unknown_job", "unknown job %q", pos[0])
	}
	if err != nil {
		return err
	}
	v := viewJob(j)
	a.emit(v, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		for _, kv := range [][2]string{
			{"job", v.ID}, {"group", v.Group}, {"kind", v.Kind}, {"trigger", v.Trigger + " " + v.TriggerID},
			{"state", v.State}, {"reason", v.Reason}, {"mode", v.Mode}, {"generation", fmt.Sprint(v.Generation)},
			{"key", v.KeyARN}, {"key material", v.KeyMaterialID}, {"HSM label", v.HSMLabel}, {"agent", v.AgentID},
			{"attempts", fmt.Sprint(v.Attempts)}, {"created", v.CreatedAt.Format(time.RFC3339)}, {"deadline", v.Deadline.Format(time.RFC3339)},
		} {
			if kv[1] != "" {
				fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
			}
		}
		tw.Flush()
		fmt.Fprintln(w, "\nhistory:")
		tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		for _, t := range v.History {
			fmt.Fprintf(tw, "  %s\t%s\t-> %s\t%s\n", t.At.Format("2006-01-02 15:04:05.000"), orDash(string(t.From)), t.To, t.Note)
		}
		tw.Flush()
	})
	return nil
}
