package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/keyferry/keyferry/agent/hsm"
)

// cmdCheck validates the configuration (every problem), logs in to the
// HSM, probes its mechanisms and prints the capability table and the agent
// identity public key to register in the cloud.
func cmdCheck(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := loadConfig(args, "check")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "config: ok")
	log := newLogger(io.Discard, "error")
	h, err := hsm.Open(ctx, hsmConfig(cfg, log))
	if err != nil {
		return fmt.Errorf("hsm login: %w", err)
	}
	defer h.Close()
	fmt.Fprintf(stdout, "hsm: logged in to token %q\n", h.Token())
	caps, err := h.Capabilities(ctx)
	if err != nil {
		return fmt.Errorf("hsm mechanism probe: %w", err)
	}
	fmt.Fprintln(stdout, "capabilities (key spec x wrapping algorithm):")
	fmt.Fprintln(stdout, hsm.FormatCapabilities(caps))
	id, err := h.Identity(ctx, cfg.HSM.IdentityLabel)
	if err != nil {
		return fmt.Errorf("agent identity key: %w", err)
	}
	fmt.Fprintf(stdout, "agent identity public key (%s), register it for agent %q:\n", cfg.HSM.IdentityLabel, cfg.AgentID)
	return pem.Encode(stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: id.PublicDER()})
}

// cmdIdentity prints only the agent identity public key (PEM), creating the
// HSM key if it does not exist yet (for scripts that register the agent).
func cmdIdentity(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := loadConfig(args, "identity")
	if err != nil {
		return err
	}
	h, err := hsm.Open(ctx, hsmConfig(cfg, newLogger(io.Discard, "error")))
	if err != nil {
		return fmt.Errorf("hsm login: %w", err)
	}
	defer h.Close()
	id, err := h.Identity(ctx, cfg.HSM.IdentityLabel)
	if err != nil {
		return fmt.Errorf("agent identity key: %w", err)
	}
	return pem.Encode(stdout, &pem.Block{Type: "PUBLIC KEY", Bytes: id.PublicDER()})
}
