package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/keyferry/keyferry/agent/audit"
	"github.com/keyferry/keyferry/agent/config"
	"github.com/keyferry/keyferry/agent/daemon"
	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/metrics"
	"github.com/keyferry/keyferry/agent/policy"
	"github.com/keyferry/keyferry/agent/tunnel"
	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/protocol"
)

// shutdownGrace bounds graceful shutdown (systemd TimeoutStopSec is larger).
const shutdownGrace = 60 * time.Second

func loadConfig(args []string, name string) (*config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", defaultConfig, "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return nil, usageError{err.Error()}
	}
	return config.Load(*path)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func hsmConfig(c *config.Config, log *slog.Logger) hsm.Config {
	return hsm.Config{Module: c.HSM.Module, TokenLabel: c.HSM.TokenLabel, TokenSerial: c.HSM.TokenSerial,
		PINFile: c.HSM.PINFile, PINEnv: c.HSM.PINEnv, PoolSize: c.HSM.PoolSize, InitArgs: c.HSM.InitArgs, LockOwner: c.AgentID, Logger: log}
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := loadConfig(args, "run")
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel).With("agent_id", cfg.AgentID)
	slog.SetDefault(log)
	log.Info("keyferry-agent starting", "version", version)

	pemBytes, err := os.ReadFile(cfg.ControlPlane.PublicKeyFile)
	if err != nil {
		return fmt.Errorf("control-plane public key: %w", err)
	}
	verifier, err := protocol.ParseVerifierPEM(pemBytes)
	if err != nil {
		return fmt.Errorf("control-plane public key %s: %w", cfg.ControlPlane.PublicKeyFile, err)
	}
	h, err := hsm.Open(ctx, hsmConfig(cfg, log))
	if err != nil {
		return err
	}
	defer h.Close()
	id, err := h.Identity(ctx, cfg.HSM.IdentityLabel)
	if err != nil {
		return err
	}
	caps, err := h.Capabilities(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return err
	}
	pins, err := policy.OpenPins(filepath.Join(cfg.StateDir, "pins.json"))
	if err != nil {
		return err
	}
	var signer audit.Signer
	if cfg.Audit.Sign {
		signer = id
	}
	alog, err := audit.Open(cfg.Audit.Path, signer)
	if err != nil {
		return err
	}
	defer alog.Close()
	specs := make([]keyspec.Spec, len(cfg.Policy.KeySpecs))
	for i, s := range cfg.Policy.KeySpecs {
		specs[i] = keyspec.Spec(s)
	}
	pol := policy.New(policy.Config{
		Verifier: verifier, ClockSkew: cfg.ControlPlane.ClockSkew.D(),
		Accounts: cfg.Policy.Accounts, Regions: cfg.Policy.Regions, Groups: cfg.Policy.Groups, KeySpecs: specs,
		MinWrappingKeyBits: cfg.Policy.MinWrappingKeyBits,
		GlobalRate:         policy.Rate{PerMinute: cfg.Policy.GlobalRate.PerMinute, Burst: cfg.Policy.GlobalRate.Burst},
		GroupRate:          policy.Rate{PerMinute: cfg.Policy.GroupRate.PerMinute, Burst: cfg.Policy.GroupRate.Burst},
		ReplayCacheSize:    cfg.Policy.ReplayCacheSize, Pins: pins,
	})
	m := metrics.New()
	d, err := daemon.New(daemon.Config{AgentID: cfg.AgentID, Version: version, HSMPool: cfg.HSMPool, PoolSize: cfg.HSM.PoolSize,
		HSM: h, Identity: id, Capabilities: daemon.HelloCapabilities(caps, daemon.Allowed{KeySpecs: specs, MinWrappingKeyBits: cfg.Policy.MinWrappingKeyBits}), Policy: pol, Audit: alog, Metrics: m, Logger: log,
		Heartbeat: cfg.Tunnel.HeartbeatInterval.D()})
	if err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.Region))
	if err != nil {
		return fmt.Errorf("AWS credentials chain: %w", err)
	}
	tun, err := tunnel.New(tunnel.Config{
		Endpoint: cfg.Endpoint,
		Presigner: tunnel.SigV4Presigner{Credentials: awsCfg.Credentials, Region: cfg.Region,
			Params: url.Values{"agent_id": {cfg.AgentID}, "hsm_pool": {cfg.HSMPool}}},
		HeartbeatInterval: cfg.Tunnel.HeartbeatInterval.D(), MaxConnectionAge: cfg.Tunnel.MaxConnectionAge.D(),
		BackoffInitial: cfg.Tunnel.BackoffInitial.D(), BackoffMax: cfg.Tunnel.BackoffMax.D(),
		HandshakeTimeout: cfg.Tunnel.HandshakeTimeout.D(),
		Hello:            d.Hello, Heartbeat: d.Heartbeat, Handle: d.Handle, Logger: log, Observer: m,
	})
	if err != nil {
		return err
	}
	d.SetSender(tun)
	m.SetQueued(tun.Queued)
	if cfg.Metrics.Listen != "" {
		health := func() (bool, string) {
			if !tun.Connected() {
				return false, "tunnel disconnected"
			}
			return true, "ok"
		}
		go func() {
			if err := metrics.Serve(ctx, cfg.Metrics.Listen, metrics.Handler(m, health), func(a net.Addr) {
				log.Info("metrics listening", "addr", a.String())
			}); err != nil {
				log.Error("metrics server", "err", err)
			}
		}()
	}
	seq, head := alog.Head()
	if _, err := alog.Append(ctx, audit.Record{Event: audit.EventStart, Message: "keyferry-agent " + version,
		Fields: map[string]string{"hsm_token": h.Token(), "previous_seq": fmt.Sprint(seq), "previous_hash": head}}); err != nil {
		return err
	}
	err = d.Serve(ctx, tun, shutdownGrace)
	stopCtx := context.Background()
	if _, aerr := alog.Append(stopCtx, audit.Record{Event: audit.EventStop, Decision: map[bool]string{true: "clean", false: "incomplete"}[err == nil]}); aerr != nil {
		log.Error("audit stop record", "err", aerr)
	}
	return err
}
