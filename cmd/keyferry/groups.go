package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

func cmdGroups(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(a.stdout, "Usage: keyferry groups validate FILE | keyferry groups list\n\nRun \"keyferry groups validate --help\" or \"keyferry groups list --help\" for flags.\n")
		if len(args) == 0 {
			return usageErrorf("groups: want validate or list")
		}
		return nil
	}
	switch args[0] {
	case "validate":
		a.name = "groups validate"
		return groupsValidate(ctx, a, args[1:])
	case "list":
		a.name = "groups list"
		return groupsList(a, args[1:])
	}
	return usageErrorf("groups: unknown subcommand %q (want validate or list)", args[0])
}

// problemView is one validation problem in --json output.
type problemView struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

type validateView struct {
	File     string        `json:"file"`
	Valid    bool          `json:"valid"`
	Groups   int           `json:"groups"`
	Problems []problemView `json:"problems"`
}

func groupsValidate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("groups validate", "groups validate FILE [--deployed] [--json]",
		"Checks a key-groups file (YAML or JSON) and the policy files it names; prints every problem with its path.\n"+
			"With --deployed, also checks the file against the deployment's current keys (its DynamoDB tables): a group\n"+
			"with replicas whose current key is single-Region and that keeps its key (in-place, hybrid) is a problem.\n"+
			"Changes nothing. Exit 0 when valid, 1 when not.")
	deployed := fs.Bool("deployed", false, "also check replicas against the deployment's current keys")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("groups validate: want exactly one FILE")
	}
	v := validateView{File: pos[0], Problems: []problemView{}}
	cfg, err := groups.Load(pos[0])
	var ve *groups.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, p := range ve.Problems {
			v.Problems = append(v.Problems, problemView{Path: p.Path, Message: p.Message})
		}
	case err != nil:
		return &cliError{code: exitUsage, kind: "usage", err: err}
	default:
		v.Valid, v.Groups = true, len(cfg.Groups)
		if *deployed {
			if err := checkDeployedReplicas(ctx, a, cfg); errors.As(err, &ve) {
				v.Valid = false
				for _, p := range ve.Problems {
					v.Problems = append(v.Problems, problemView{Path: p.Path, Message: p.Message})
				}
			} else if err != nil {
				return err
			}
		}
	}
	a.emit(v, func(w io.Writer) {
		if v.Valid {
			fmt.Fprintf(w, "%s: valid, %d groups\n", v.File, v.Groups)
			return
		}
		for _, p := range v.Problems {
			path := p.Path
			if path == "" {
				path = "(document)"
			}
			fmt.Fprintf(w, "%s: %s: %s\n", v.File, path, p.Message)
		}
		fmt.Fprintf(w, "%d problems\n", len(v.Problems))
	})
	if !v.Valid {
		a.code = exitFailed
	}
	return nil
}

// groupView is one group in groups list / status.
type groupView struct {
	Name       string `json:"name"`
	KeySpec    string `json:"key_spec"`
	KeyUsage   string `json:"key_usage"`
	Mode       string `json:"mode"`
	Alias      string `json:"alias"`
	Account    string `json:"account"`
	Region     string `json:"region"`
	HSMPool    string `json:"hsm_pool"`
	Schedule   string `json:"schedule"`
	Expiration string `json:"material_expiration"`
}

func viewGroup(g *groups.Group) groupView {
	return groupView{
		Name: g.Name, KeySpec: string(g.KeySpec), KeyUsage: string(g.KeyUsage), Mode: string(g.Mode),
		Alias: g.Alias, Account: g.Account, Region: g.Region, HSMPool: g.HSMPool, Schedule: g.Schedule,
		Expiration: g.MaterialExpiration.String(),
	}
}

func groupsList(a *app, args []string) error {
	fs := a.flags("groups list", "groups list [--groups FILE] [--json]",
		"Lists the groups of the deployment's key-groups file (--groups FILE or KEYFERRY_GROUPS_FILE).")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageErrorf("groups list takes no arguments")
	}
	cfg, err := a.deployment(true)
	if err != nil {
		return err
	}
	out := struct {
		File   string      `json:"file"`
		Groups []groupView `json:"groups"`
	}{File: a.groupsPath(), Groups: []groupView{}}
	for i := range cfg.Groups {
		out.Groups = append(out.Groups, viewGroup(&cfg.Groups[i]))
	}
	a.emit(out, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tSPEC\tUSAGE\tMODE\tALIAS\tACCOUNT\tREGION\tPOOL\tSCHEDULE\tEXPIRES")
		for _, g := range out.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.KeySpec, g.KeyUsage, g.Mode, g.Alias, g.Account, g.Region, g.HSMPool, g.Schedule, g.Expiration)
		}
		tw.Flush()
	})
	return nil
}

// checkDeployedReplicas checks cfg's multi-Region groups against the
// current key of each (the store's latest generation): KMS cannot add
// replicas to a single-Region key (groups.CheckReplicasAgainstKeys).
func checkDeployedReplicas(ctx context.Context, a *app, cfg *groups.Config) error {
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	var readErr error
	current := func(group string) (string, bool) {
		gen, err := st.Latest(ctx, group)
		if errors.Is(err, store.ErrNotFound) {
			return "", false
		}
		if err != nil {
			readErr = fmt.Errorf("groups validate --deployed: latest generation of %s: %w", group, err)
			return "", false
		}
		return gen.KeyARN, true
	}
	err = groups.CheckReplicasAgainstKeys(cfg, current)
	if readErr != nil {
		return readErr
	}
	return err
}
