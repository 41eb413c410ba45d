// Command sandbox runs the whole keyferry system on this machine (`make
// sandbox`): a fresh SoftHSM2 token, moto_server (DynamoDB), the KMS
// emulator, the API Gateway WebSocket emulator with the real Lambda
// handlers, and a keyferry-agent process. It rotates every group once, then
// keeps firing schedules every few seconds and prints a live table, until
// Ctrl-C.
//
//	go run ./test/cmd/sandbox [--once] [--json] [--groups FILE] [--every 15s]
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
	info("keyferry sandbox: starting SoftHSM2, moto_server, KMS emulator, gateway emulator and keyferry-agent ...")
	sb, err := sandbox.Start(ctx, sandbox.Options{
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
	info("to use the AWS CLI or keyferry against it:\n  export %s\n", strings.Join(sb.Env(), " \\\n         "))

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
	info("running; schedules fire every %s. Ctrl-C stops everything.", *every)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			info("stopping ...")
			return 0
		case <-tick.C:
		}
		jobs, err := sb.RotateAll(ctx, "schedule", 90*time.Second)
		for g, j := range jobs {
			if j != nil {
				last[g] = j
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

func printTable(w io.Writer, s sandbox.Summary) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tMODE\tSPEC\tKEY\tGEN\tMATERIAL\tLAST JOB\tSTATE\tVERIFIED")
	for _, g := range s.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%v\n", g.Name, g.Mode, g.KeySpec, short(g.KeyARN), g.Generations,
			short(g.KeyMaterialID), g.LastJobID, g.LastJobState, g.Verified)
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
