// Command soak runs the keyferry sandbox under randomly injected faults for a
// bounded time, audits every invariant, prints a JSON summary and exits
// non-zero on any violation. `make soak ARGS="--duration 2m --seed 7"`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyferry/keyferry/test/soak"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg soak.Config
	fs.DurationVar(&cfg.Duration, "duration", soak.DefaultDuration, "fault phase length (at most 8m; the audit follows)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "fault schedule seed (0 = time based)")
	fs.IntVar(&cfg.Rotations, "rotations", 0, "stop after this many rotation triggers (0 = until --duration)")
	fs.IntVar(&cfg.Workers, "workers", 3, "concurrent rotation triggers")
	fs.StringVar(&cfg.Dir, "dir", "", "keep the sandbox's files (logs, audit, token) here")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.Duration <= 0 || cfg.Duration > soak.MaxDuration {
		fmt.Fprintf(stderr, "soak: --duration must be in (0, %s]\n", soak.MaxDuration)
		return 2
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := soak.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "soak: %v\n", err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	if len(rep.InvariantViolations) > 0 {
		return 1
	}
	return 0
}
