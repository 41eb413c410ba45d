// Command sandbox runs the whole keyferry system on this machine (`make
// sandbox`): a fresh NSS softoken database (or SoftHSM2 token),
// moto_server (DynamoDB), the KMS emulator, the API Gateway WebSocket
// emulator with the real Lambda handlers, and the sandbox pool's
// keyferry-agent processes (two by default, one token). It rotates every
// group once, then keeps firing schedules every few seconds and prints a
// live table (which agent wrapped each job), until Ctrl-C.
//
//	go run ./test/cmd/sandbox [--once] [--json] [--groups FILE] [--every 15s] [--agents 2]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/sandbox"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "rotate every group once, verify, and exit (0 only if every group verified)")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout instead of tables")
	groupsFile := fs.String("groups", "", "key-groups file (default: the built-in sandbox sample)")
	every := fs.Duration("every", 15*time.Second, "how often the schedules fire while running")
	dir := fs.String("dir", "", "working directory (default: a temporary one, removed on exit)")
	verbose := fs.Bool("v", false, "log the control plane and gateway (JSON) on stderr")
	agents := fs.Int("agents", 2, "keyferry-agent processes in the sandbox pool (each its own identity key on the one token)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	info := func(format string, a ...any) {
		if !*asJSON {
			fmt.Fprintf(stdout, format+"\n", a...)
		} else {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
	}
	if *agents < 1 {
		fmt.Fprintf(stderr, "sandbox: --agents %d: the pool needs at least 1 agent\n", *agents)
		return 2
	}
	info("keyferry sandbox: starting the token, moto_server, KMS emulator, gateway emulator and %d keyferry-agent processes ...", *agents)
	sb, err := sandbox.Start(ctx, sandbox.Options{
		Agents:     *agents,
		GroupsFile: *groupsFile,
		Dir:        *dir,
		Log:        logger(*verbose, stderr),
	})
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return 1
	}
	defer sb.Close()
	info("endpoints:\n  KMS        %s\n  DynamoDB   %s\n  WebSocket  %s\n", sb.Endpoints.KMS, sb.Endpoints.DynamoDB, sb.Endpoints.WebSocket)
	info("to use the AWS CLI or keyferry against it (the sandbox's admin key):\n  export %s\n", strings.Join(sb.Env(), " \\\n         "))
	if op := sb.OperatorEnv(); !slices.Equal(op, sb.Env()) {
		info("or as the template's operator principal (IAM from the template decides every call):\n  export %s\n", strings.Join(op, " \\\n         "))
	}

	last := map[string]*store.Job{}
	jobs, rotErr := sb.RotateAll(ctx, "schedule", 90*time.Second)
	for g, j := range jobs {
		if j != nil {
			last[g] = j
		}
	}
	sum, err := sb.Summarize(ctx, last)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox: %v\n", err)
		return 1
	}
	allVerified := rotErr == nil
	for _, g := range sum.Groups {
		allVerified = allVerified && g.Verified
	}
	if *once {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(sum)
		} else {
			printTable(stdout, sum)
		}
		if rotErr != nil {
			fmt.Fprintf(stderr, "sandbox: %v\n", rotErr)
		}
		if !allVerified {
			return 1
		}
		return 0
	}
	printTable(stdout, sum)
	if rotErr != nil {
		fmt.Fprintf(stderr, "sandbox: first rotation: %v\n", rotErr)
	}
	// The template's own triggers: every EventBridge Scheduler schedule
	// (rotations, keepalive) fires with its exact Input through the Lambda
	// Invoke API, retried per its retry policy, dead-lettered to its DLQ.
	var trig *sandbox.Triggers
	if sb.Template != nil {
		if trig, err = sb.StartTriggers(ctx, sb.Template, sandbox.TriggerOptions{}); err != nil {
			fmt.Fprintf(stderr, "sandbox: %v\n", err)
			return 1
		}
		info("running; the template's %d schedules fire every %s. Ctrl-C stops everything.", len(trig.Scheduler.Schedules), *every)
	} else {
		info("running; schedules fire every %s. Ctrl-C stops everything.", *every)
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			info("stopping ...")
			return 0
		case <-tick.C:
		}
		if trig != nil {
			ex, err := trig.FireAll(ctx)
			dead := 0
			for _, e := range ex {
				if e.DeadLettered {
					dead++
				}
			}
			if err != nil || dead > 0 {
				fmt.Fprintf(stderr, "sandbox: %d schedule executions, %d dead-lettered: %v\n", len(ex), dead, err)
			}
			// Watch the jobs they started until half the tick has passed,
			// so the table shows this tick's jobs.
			for g, j := range watchJobs(ctx, sb, *every/2) {
				last[g] = j
			}
		} else {
			jobs, _ := sb.RotateAll(ctx, "schedule", 90*time.Second)
			for g, j := range jobs {
				if j != nil {
					last[g] = j
				}
			}
		}
		if ctx.Err() != nil {
			continue
		}
		sum, serr := sb.Summarize(ctx, last)
		if serr != nil {
			fmt.Fprintf(stderr, "sandbox: %v\n", serr)
			continue
		}
		if *asJSON {
			json.NewEncoder(stdout).Encode(sum)
		} else {
			fmt.Fprintf(stdout, "\n%s\n", time.Now().Format(time.TimeOnly))
			printTable(stdout, sum)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sandbox: %v\n", err)
		}
	}
}

// watchJobs polls every group's head for its active job for d and returns
// the last job seen per group, read again at the end (its final state when
// it has ended).
func watchJobs(ctx context.Context, sb *sandbox.Sandbox, d time.Duration) map[string]*store.Job {
	seen := map[string]string{}
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		for _, g := range sb.Groups.Groups {
			if h, err := sb.Deps.Store.GroupHead(ctx, g.Name); err == nil && h.ActiveJob != "" {
				seen[g.Name] = h.ActiveJob
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	out := map[string]*store.Job{}
	for g, id := range seen {
		if j, err := sb.Deps.Store.GetJob(ctx, id); err == nil {
			out[g] = j
		}
	}
	return out
}

func printTable(w io.Writer, s sandbox.Summary) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tPOOL\tCONNECTED\tDRAINING\tJOBS WRAPPED")
	for _, a := range s.Agents {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%d\n", a.ID, a.Pool, a.Connected, a.Draining, a.JobsWrapped)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GROUP\tMODE\tSPEC\tKEY\tGEN\tMATERIAL\tLAST JOB\tSTATE\tAGENT\tVERIFIED")
	for _, g := range s.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%v\n", g.Name, g.Mode, g.KeySpec, short(g.KeyARN), g.Generations,
			short(g.KeyMaterialID), g.LastJobID, g.LastJobState, g.LastJobAgent, g.Verified)
	}
	tw.Flush()
}

func short(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 14 {
		return s[:12] + ".."
	}
	return s
}

func logger(verbose bool, w io.Writer) *slog.Logger {
	if !verbose {
		w = io.Discard
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}
