// Command keyferry-agent is the on-premises daemon that wraps HSM-born keys
// for import into AWS KMS over one outbound websocket.
//
//	keyferry-agent run   [-config FILE]   run the daemon (SIGTERM: drain, see below)
//	keyferry-agent check [-config FILE]   validate config, log in to the HSM, print the
//	                                      capability table and the identity public key
//	keyferry-agent identity [-config FILE] print only the identity public key (PEM)
//	keyferry-agent audit verify [-pubkey PEM] FILE
//	keyferry-agent version
//
// SIGTERM (or SIGINT) drains the agent: it stops taking new wrap requests
// (any that arrive are refused with "agent is shutting down; retry"), tells
// the control plane with a signed draining notice listing the requests it
// still finishes (every other request outstanding at it goes to another
// agent of its HSM pool at once), finishes those, waits until their results
// are acknowledged on the tunnel, then exits (at most 60 s). Restarting the
// agents of a pool one after the other therefore loses no rotation.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const defaultConfig = "/etc/keyferry/agent.yaml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout)
	case "identity":
		err = cmdIdentity(ctx, args[1:], stdout)
	case "audit":
		if len(args) < 2 || args[1] != "verify" {
			usage(stderr)
			return 2
		}
		err = cmdAuditVerify(args[2:], stdout)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "keyferry-agent %s\n", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, err)
			return 2
		}
		fmt.Fprintf(stderr, "keyferry-agent %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  keyferry-agent run   [-config FILE]      (SIGTERM: stop taking requests, tell the control
                                          plane, finish held requests, exit)
  keyferry-agent check [-config FILE]
  keyferry-agent identity [-config FILE]
  keyferry-agent audit verify [-pubkey PEM] FILE
  keyferry-agent version
`)
}
