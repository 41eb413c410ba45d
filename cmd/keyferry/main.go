// Command keyferry is the operator CLI of keyferry: it shows the state of
// key groups, agents, jobs and generations (reading DynamoDB and KMS
// directly) and acts on groups (rotate, sync, kill, restore) by invoking the
// operator Lambda. It uses the standard AWS credential chain, region and
// AWS_ENDPOINT_URL_* variables, so it works the same against AWS and the
// sandbox (`go run ./test/cmd/sandbox` prints the variables to export).
//
//	keyferry groups validate FILE | groups list
//	keyferry status
//	keyferry rotate GROUP [--wait]
//	keyferry sync KEY-or-GROUP [--policy] [--import-material] [--delete-material --confirm GROUP]
//	keyferry kill GROUP --confirm GROUP
//	keyferry restore GROUP [--wait]
//	keyferry jobs [--group G] [--state S] [--watch]
//	keyferry job ID
//	keyferry keys GROUP
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `keyferry: operate keyferry key groups (AWS KMS keys imported from an HSM).

Usage:
  keyferry groups validate FILE     check a key-groups file; every problem with its path
  keyferry groups list              the deployment's groups (--groups FILE or KEYFERRY_GROUPS_FILE)
  keyferry status                   agents connected, and per group: current key, generation,
                                    age, next rotation, material expiry, last job
  keyferry rotate GROUP [--wait]    force a rotation; --wait follows the job to its verdict
  keyferry sync KEY-or-GROUP [--policy] [--import-material] [--delete-material --confirm GROUP]
                                    synchronize a group (default: --policy --import-material)
  keyferry kill GROUP --confirm GROUP
                                    kill switch: delete the group's imported material from KMS
  keyferry restore GROUP [--wait]   re-import killed material from the HSM
  keyferry jobs [--group G] [--state S] [--watch]
                                    recent jobs, newest first
  keyferry job ID                   one job with its full state history
  keyferry keys GROUP               every generation, from the store and from KMS, with
                                    any disagreement flagged

Every command takes --help and --json (a JSON document on stdout for scripts;
errors too, as {"error": {...}}). Run "keyferry COMMAND --help" for its flags.

Environment: the standard AWS variables and files (AWS_PROFILE, AWS_REGION,
AWS_ACCESS_KEY_ID, ..., AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_KMS,
AWS_ENDPOINT_URL_LAMBDA); KEYFERRY_TABLE_PREFIX and KEYFERRY_*_TABLE name the
tables (default prefix "keyferry-"); KEYFERRY_GROUPS_FILE names the groups
file bundled with the deployment; KEYFERRY_OPERATOR_FUNCTION names the
operator Lambda (default keyferry-operator).

Exit codes:
  0  success (rotation verified, no disagreement)
  1  the operation ran and failed: job FAILED or SKIPPED, rotation not verified,
     store and KMS disagree, invalid groups file
  2  usage: unknown command, bad flags or arguments, missing --confirm
  3  not found: unknown group or job
  4  no agent connected for the group's HSM pool
  5  AWS credentials or region missing, or access denied
  6  endpoint unreachable (network, AWS_ENDPOINT_URL_*)
  7  control-plane error: the operator function or a table is missing or failed
  8  timed out waiting (--timeout)
`

// Exit codes (documented in usage).
const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitNotFound     = 3
	exitNoAgent      = 4
	exitCredentials  = 5
	exitUnreachable  = 6
	exitControlPlane = 7
	exitTimeout      = 8
)

type command func(ctx context.Context, a *app, args []string) error

var commands = map[string]command{
	"groups":  cmdGroups,
	"status":  cmdStatus,
	"rotate":  cmdRotate,
	"sync":    cmdSync,
	"kill":    cmdKill,
	"restore": cmdRestore,
	"jobs":    cmdJobs,
	"job":     cmdJob,
	"keys":    cmdKeys,
}

// run is the whole CLI; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return a.fail(usageErrorf("unknown command %q (run keyferry --help)", args[0]))
	}
	a.name = args[0]
	if err := cmd(ctx, a, args[1:]); err != nil {
		return a.fail(err)
	}
	return a.code
}
