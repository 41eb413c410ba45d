package daemon

import (
	"context"
	"errors"
	"time"
)

// Tunnel is the part of tunnel.Client that Serve drives.
type Tunnel interface {
	Run(ctx context.Context) error
	Flush(ctx context.Context) error
}

// Serve runs the tunnel until ctx ends (SIGTERM), then shuts down
// gracefully: stop accepting requests, let in-flight wraps finish, wait
// until their results have been written and acknowledged on the tunnel,
// then close the connection. grace bounds the whole shutdown.
func (d *Daemon) Serve(ctx context.Context, t Tunnel, grace time.Duration) error {
	tctx, stopTunnel := context.WithCancel(context.Background())
	defer stopTunnel()
	done := make(chan error, 1)
	go func() { done <- t.Run(tctx) }()
	select {
	case <-ctx.Done():
	case err := <-done:
		return err
	}
	d.log.Info("shutting down: finishing in-flight wraps", "pending", len(d.Pending()), "grace", grace.String())
	gctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	errDrain := d.Drain(gctx)
	errFlush := t.Flush(gctx)
	stopTunnel()
	<-done
	d.cancel()
	if err := errors.Join(errDrain, errFlush); err != nil {
		d.log.Error("shutdown incomplete", "err", err)
		return err
	}
	d.log.Info("shutdown complete")
	return nil
}
