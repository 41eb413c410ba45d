// Command kmsemu runs the keyferry KMS emulator (package test/kmsemu) as a
// standalone server until interrupted:
//
//	go run ./test/cmd/kmsemu --addr 127.0.0.1:4599 --region eu-west-1 --quota-scale 0
//
// Point the AWS CLI or an SDK at it with --endpoint-url http://ADDR. Admin
// endpoints: POST /_emu/clock {"advance_seconds": N}, GET /_emu/stats.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyferry/keyferry/test/kmsemu"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kmsemu:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kmsemu", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:4599", "listen address")
	region := fs.String("region", "us-east-1", "AWS region in ARNs")
	account := fs.String("account", "111122223333", "AWS account id in ARNs")
	scale := fs.Float64("quota-scale", 1, "multiplier of AWS's per-second quotas (0 = unlimited)")
	rotCap := fs.Int("rotation-cap", 10, "on-demand rotations allowed per key")
	rotDelay := fs.Duration("rotation-delay", 2*time.Second, "how long an on-demand rotation runs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale < 0 || *rotCap < 1 {
		return fmt.Errorf("--quota-scale must be >= 0 and --rotation-cap >= 1")
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	srv := kmsemu.New(kmsemu.Options{Region: *region, Account: *account, QuotaScale: *scale,
		RotationCap: *rotCap, RotationDelay: *rotDelay, Logger: log})
	if err := srv.Start(*addr); err != nil {
		return err
	}
	log.Info("kmsemu listening", "url", srv.URL(), "region", *region, "account", *account, "quota_scale", *scale)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("kmsemu stopping")
	return srv.Close()
}
