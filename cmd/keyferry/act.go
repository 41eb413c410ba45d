package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/shared/groups"
)

// functionError is the document Lambda returns with X-Amz-Function-Error.
type functionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// invokeOperator sends req to the operator Lambda (RequestResponse).
func (a *app) invokeOperator(ctx context.Context, req handlers.OperatorRequest) (handlers.OperatorResponse, error) {
	var resp handlers.OperatorResponse
	lc, err := a.lambdaClient(ctx)
	if err != nil {
		return resp, err
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	out, err := lc.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(a.functionName()), InvocationType: types.InvocationTypeRequestResponse, Payload: payload,
	})
	if err != nil {
		return resp, err
	}
	if out.FunctionError != nil {
		var fe functionError
		json.Unmarshal(out.Payload, &fe)
		msg := fe.Message
		if msg == "" {
			msg = string(out.Payload)
		}
		switch {
		case strings.Contains(msg, "unknown group"):
			return resp, notFoundf("unknown_group", "unknown group %q (the operator function does not know it)", req.Group)
		case strings.Contains(msg, "no live agent"):
			return resp, &cliError{code: exitNoAgent, kind: "no_agent", err: fmt.Errorf("operator: %s", msg)}
		case strings.Contains(msg, "bad operator request"):
			return resp, usageErrorf("operator refused the request: %s", msg)
		}
		return resp, &cliError{code: exitControlPlane, kind: "control_plane", err: fmt.Errorf("operator function %s failed: %s", a.functionName(), msg)}
	}
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		return resp, &cliError{code: exitControlPlane, kind: "control_plane", err: fmt.Errorf("operator function answered %q: %w", truncate(string(out.Payload), 200), err)}
	}
	return resp, nil
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// checkGroup checks name against the deployment's groups file when one is
// available (the operator function is the authority otherwise). It returns
// the group, or nil when no file is available.
func (a *app) checkGroup(name string) (*groups.Group, error) {
	cfg, err := a.deployment(false)
	if err != nil || cfg == nil {
		return nil, err
	}
	g, ok := cfg.Group(name)
	if !ok {
		return nil, notFoundf("unknown_group", "unknown group %q (groups file %s)", name, a.groupsPath())
	}
	return g, nil
}

// requireAgent fails with exitNoAgent unless a verified agent of the
// group's pool (or, without a groups file, any agent) is connected.
func (a *app) requireAgent(ctx context.Context, g *groups.Group) error {
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	if g == nil {
		n, err := st.CountConnections(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			return &cliError{code: exitNoAgent, kind: "no_agent", err: fmt.Errorf("no agent connected: the job would wait for one (start keyferry-agent, or pass --queue)")}
		}
		return nil
	}
	conns, err := st.ConnectionsInPool(ctx, g.HSMPool)
	if err != nil {
		return err
	}
	for _, c := range conns {
		if c.Hello {
			return nil
		}
	}
	return &cliError{code: exitNoAgent, kind: "no_agent", err: fmt.Errorf("no agent connected for HSM pool %q of group %s: the job would wait for one (start keyferry-agent, or pass --queue)", g.HSMPool, g.Name)}
}

// actResult is the --json document of rotate, sync, kill and restore.
type actResult struct {
	Action    string                    `json:"action"`
	Group     string                    `json:"group"`
	RequestID string                    `json:"request_id"`
	Response  handlers.OperatorResponse `json:"response"`
	Jobs      []*jobView                `json:"jobs,omitempty"`
	Verdict   string                    `json:"verdict,omitempty"`
	Verified  *verification             `json:"verification,omitempty"`
}

func printAct(w io.Writer, r *actResult) {
	fmt.Fprintf(w, "%s %s (request %s)\n", r.Action, r.Group, r.RequestID)
	if r.Response.Changed > 0 {
		fmt.Fprintf(w, "  changed: %d\n", r.Response.Changed)
	}
	if len(r.Response.Jobs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "  JOB\tOUTCOME\tSTATE\tREASON")
		for _, j := range r.Response.Jobs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", j.JobID, j.Outcome, j.State, j.Reason)
		}
		tw.Flush()
	}
	if r.Verdict != "" {
		fmt.Fprintf(w, "verdict: %s\n", r.Verdict)
	}
}

func cmdRotate(ctx context.Context, a *app, args []string) error {
	fs := a.flags("rotate", "rotate GROUP [--wait] [--timeout 10m] [--queue] [--request-id ID] [--json]",
		"Forces a rotation of GROUP through the operator Lambda. With --wait, follows the job through its states\nand ends with a verdict: the new generation verified in KMS (exit 0), the job FAILED/SKIPPED or not\nverified (exit 1), or a timeout (exit 8). Refuses (exit 4) when no agent of the group's pool is connected,\nunless --queue.")
	wait := fs.Bool("wait", false, "follow the job until it ends, then verify the new generation in KMS")
	queue := fs.Bool("queue", false, "start the job even if no agent is connected (it waits for one)")
	timeout := fs.Duration("timeout", defaultWait, "how long --wait waits")
	reqID := fs.String("request-id", "", "idempotency key (default: random); repeating it returns the same job")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("rotate: want exactly one GROUP")
	}
	return a.act(ctx, handlers.OpRotate, pos[0], "", *reqID, *wait, *queue, *timeout)
}

func cmdRestore(ctx context.Context, a *app, args []string) error {
	fs := a.flags("restore", "restore GROUP [--wait] [--timeout 10m] [--json]",
		"Re-imports the group's killed material from the HSM (undoes kill). With --wait, follows the re-import jobs.")
	wait := fs.Bool("wait", false, "follow the re-import jobs until they end")
	queue := fs.Bool("queue", false, "start even if no agent is connected")
	timeout := fs.Duration("timeout", defaultWait, "how long --wait waits")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("restore: want exactly one GROUP")
	}
	return a.act(ctx, handlers.OpRestore, pos[0], "", *reqID, *wait, *queue, *timeout)
}

func cmdKill(ctx context.Context, a *app, args []string) error {
	fs := a.flags("kill", "kill GROUP --confirm GROUP [--json]",
		"Kill switch: deletes the imported key material of every generation of GROUP from KMS (keys become\nunusable at once). Reversible with \"keyferry restore GROUP\" while the HSM keeps its copy.")
	confirm := fs.String("confirm", "", "must repeat the group name")
	reqID := fs.String("request-id", "", "idempotency key (default: random)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("kill: want exactly one GROUP")
	}
	if *confirm != pos[0] {
		return usageErrorf("kill %s: pass --confirm %s to delete the group's key material from KMS", pos[0], pos[0])
	}
	return a.act(ctx, handlers.OpKill, pos[0], *confirm, *reqID, false, true, 0)
}

func cmdSync(ctx context.Context, a *app, args []string) error {
	fs := a.flags("sync", "sync KEY-or-GROUP [--policy] [--import-material] [--delete-material --confirm GROUP] [--json]",
		"Synchronizes a group with its configuration and HSM: --policy puts the group's key policy on every key;\n--import-material re-imports every live material from the HSM; --delete-material deletes imported\nmaterial (like kill; needs --confirm GROUP). Without flags: --policy --import-material. KEY may be a\ngroup name, a KMS alias, key id or ARN (the key's keyferry:group tag names its group).")
	policy := fs.Bool("policy", false, "put the group's key policy on every key")
	imp := fs.Bool("import-material", false, "re-import every live material from the HSM")
	del := fs.Bool("delete-material", false, "delete the imported material (needs --confirm GROUP)")
	confirm := fs.String("confirm", "", "with --delete-material: must repeat the group name")
	wait := fs.Bool("wait", false, "follow the re-import jobs until they end")
	timeout := fs.Duration("timeout", defaultWait, "how long --wait waits")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("sync: want exactly one KEY or GROUP")
	}
	if *del && (*policy || *imp) {
		return usageErrorf("sync: --delete-material cannot be combined with --policy or --import-material")
	}
	if !*policy && !*imp && !*del {
		*policy, *imp = true, true
	}
	group, err := a.resolveGroup(ctx, pos[0])
	if err != nil {
		return err
	}
	if *del {
		if *confirm != group {
			return usageErrorf("sync --delete-material: pass --confirm %s to delete the group's key material from KMS", group)
		}
		return a.act(ctx, handlers.OpDeleteMaterial, group, *confirm, "", false, true, 0)
	}
	var results []*actResult
	if *policy {
		r, err := a.actResult(ctx, handlers.OpSyncPolicy, group, "", "", false, true, 0)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if *imp {
		r, err := a.actResult(ctx, handlers.OpSyncImport, group, "", "", *wait, false, *timeout)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	a.emit(results, func(w io.Writer) {
		for _, r := range results {
			printAct(w, r)
		}
	})
	for _, r := range results {
		if r.Verdict != "" && !strings.HasPrefix(r.Verdict, "ok") {
			a.code = exitFailed
		}
	}
	return nil
}

// resolveGroup maps a group name, alias, key id or ARN to a group name.
func (a *app) resolveGroup(ctx context.Context, key string) (string, error) {
	cfg, err := a.deployment(false)
	if err != nil {
		return "", err
	}
	if cfg != nil {
		if _, ok := cfg.Group(key); ok {
			return key, nil
		}
		for _, g := range cfg.Groups {
			if g.Alias == key {
				return g.Name, nil
			}
		}
	}
	if !strings.HasPrefix(key, "alias/") && !strings.HasPrefix(key, "arn:") && !looksLikeKeyID(key) {
		return key, nil // a group name; the operator function checks it
	}
	group, err := a.groupOfKey(ctx, key)
	if err != nil {
		return "", err
	}
	return group, nil
}

func looksLikeKeyID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4 || strings.HasPrefix(s, "mrk-")
}

const defaultWait = 10 * time.Minute

// act runs one operator action and prints its result.
func (a *app) act(ctx context.Context, action handlers.OperatorAction, group, confirm, reqID string, wait, queue bool, timeout time.Duration) error {
	r, err := a.actResult(ctx, action, group, confirm, reqID, wait, queue, timeout)
	if err != nil {
		return err
	}
	a.emit(r, func(w io.Writer) { printAct(w, r) })
	if r.Verdict != "" && !strings.HasPrefix(r.Verdict, "ok") {
		a.code = exitFailed
		if strings.HasPrefix(r.Verdict, "timeout") {
			a.code = exitTimeout
		}
	}
	return nil
}

func (a *app) actResult(ctx context.Context, action handlers.OperatorAction, group, confirm, reqID string, wait, queue bool, timeout time.Duration) (*actResult, error) {
	g, err := a.checkGroup(group)
	if err != nil {
		return nil, err
	}
	if !queue {
		if err := a.requireAgent(ctx, g); err != nil {
			return nil, err
		}
	}
	if reqID == "" {
		reqID = newRequestID()
	}
	resp, err := a.invokeOperator(ctx, handlers.OperatorRequest{Action: action, Group: group, RequestID: reqID, Confirm: confirm})
	if err != nil {
		return nil, err
	}
	r := &actResult{Action: string(action), Group: group, RequestID: reqID, Response: resp}
	for _, j := range resp.Jobs {
		if j.Outcome == store.Skipped || j.State == store.StateSkipped {
			r.Verdict = "skipped: " + j.Reason
		}
	}
	if !wait || len(resp.Jobs) == 0 || r.Verdict != "" {
		return r, nil
	}
	return r, a.waitJobs(ctx, r, g, timeout)
}
