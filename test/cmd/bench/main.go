// Command bench is `make bench`: it measures keyferry side by side against
// its ceilings and against the AWS CLI walkthrough on this machine, prints a
// table and where the time went, and with BENCH_JSON=FILE (or --json FILE)
// writes the figures as one flat JSON object. Nothing in it passes or fails
// on speed; it exits non-zero only when a measurement could not be made
// (a wrap or rotation that did not verify).
//
//	go run ./test/cmd/bench [--quota-scale 20] [--fleet-keys 500] [--json FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keyferry/keyferry/agent/hsm"
	"github.com/keyferry/keyferry/agent/hsm/hsmtest"
	"github.com/keyferry/keyferry/functions/jobqueue"
	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/bench"
	"github.com/keyferry/keyferry/test/ddbfault"
	"github.com/keyferry/keyferry/test/sandbox"
)

type config struct {
	jsonPath       string
	quotaScale     float64
	fleetKeys      int
	fleetTriggers  int
	only           string
	wraps          int
	sessions       int
	rotations      int
	latencyWorkers int
	cliKeys        int
	wrapPool       int
	cpuProfile     string
	dir            string
	fleetInProcess bool
	failoverTrials int
	fleetTimeout   time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.jsonPath, "json", os.Getenv("BENCH_JSON"), "write the figures as a flat JSON object to FILE (default $BENCH_JSON)")
	fs.Float64Var(&c.quotaScale, "quota-scale", 10, "KMS emulator quota scale for the fleet run (AWS quotas x this)")
	fs.IntVar(&c.fleetKeys, "fleet-keys", 1000, "keys (groups) rotated in the fleet run")
	fs.IntVar(&c.fleetTriggers, "fleet-triggers", 16, "fleet triggers delivered at once (schedules falling due together)")
	fs.IntVar(&c.wraps, "wraps", 150, "keygen+wrap operations per wrap benchmark (direct and agent)")
	fs.IntVar(&c.sessions, "sessions", 2, "HSM sessions (agent pool_size and direct-loop goroutines)")
	fs.IntVar(&c.rotations, "rotations", 200, "rotations per mode for the latency figures")
	fs.IntVar(&c.latencyWorkers, "latency-workers", 4, "rotations in flight during the latency run")
	fs.IntVar(&c.cliKeys, "cli-keys", 20, "keys in the AWS CLI vs keyferry comparison")
	fs.IntVar(&c.wrapPool, "wrapping-key-pool", 64, "KMS emulator pre-generated wrapping keys per size")
	fs.BoolVar(&c.fleetInProcess, "fleet-inprocess", true, "after the fleet run on the RIE topology, run the same fleet with the functions in this process (fleet_inprocess_*), side by side")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (emulators + control plane) for the fleet run")
	fs.DurationVar(&c.fleetTimeout, "fleet-timeout", 20*time.Minute, "how long the fleet run follows its jobs after the last trigger before it counts the unfinished as failed (a loaded 2-core machine needs more than the 11 min an idle one takes for 1000 keys)")
	fs.IntVar(&c.failoverTrials, "failover-trials", 20, "trials per mode (agent killed, agent silently partitioned) of the pool failover figures")
	fs.StringVar(&c.only, "only", "", "run one phase only: wraps, lambda, sandbox, failover or fleet")
	fs.StringVar(&c.dir, "dir", "", "working directory (default: a temporary one, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &runner{cfg: c, out: stdout, log: stderr, phases: map[string]time.Duration{}}
	b.report.Live = stdout
	err := b.all(ctx)
	fmt.Fprintln(stdout)
	b.report.Table(stdout)
	b.whereTimeGoes(stdout)
	if c.jsonPath != "" {
		if werr := b.report.WriteJSON(c.jsonPath); werr != nil {
			err = errors.Join(err, werr)
		} else {
			fmt.Fprintf(stdout, "\nfigures written to %s\n", c.jsonPath)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

type runner struct {
	cfg    config
	out    io.Writer
	log    io.Writer
	report bench.Report
	root   string
	dir    string
	agent  string

	phases     map[string]time.Duration
	phaseOrder []string
	fleetCPU   bench.CPUSnapshot
	fleetWall  time.Duration
	profTop    string
}

func (b *runner) say(format string, a ...any) {
	fmt.Fprintf(b.out, "bench: "+format+"\n", a...)
}

func (b *runner) phase(name string, f func() error) error {
	b.say("%s ...", name)
	start := time.Now()
	err := f()
	d := time.Since(start)
	b.phases[name] = d
	b.phaseOrder = append(b.phaseOrder, name)
	if err != nil {
		b.say("%s failed after %s: %v", name, d.Round(time.Millisecond), err)
		return fmt.Errorf("%s: %w", name, err)
	}
	b.say("%s done in %s", name, d.Round(time.Millisecond))
	return nil
}

func (b *runner) all(ctx context.Context) error {
	if err := sandbox.Check(); err != nil {
		return err
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	b.root = filepath.Dir(strings.TrimSpace(string(out)))
	if b.dir = b.cfg.dir; b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "keyferry-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(b.dir)
	}
	var errs []error
	errs = append(errs, b.phase("build keyferry-agent", func() (err error) {
		b.agent, err = sandbox.BuildAgent(ctx, b.dir)
		return err
	}))
	if b.agent == "" {
		return errors.Join(errs...)
	}
	want := func(name string) bool { return b.cfg.only == "" || b.cfg.only == name }
	if want("wraps") {
		errs = append(errs, b.phase("wraps: direct PKCS#11 vs agent path", func() error { return b.wraps(ctx) }))
	}
	if want("lambda") {
		errs = append(errs, b.phase("lambda bootstrap sizes (linux/arm64)", func() error { return b.lambdaSizes(ctx) }))
	}
	if want("sandbox") {
		errs = append(errs, b.phase("sandbox (quotas off): lambda init, CLI vs keyferry, rotation latency", func() error { return b.quotasOff(ctx) }))
	}
	if want("failover") {
		errs = append(errs, b.phase(fmt.Sprintf("failover of a two-agent pool: %d trials per mode", b.cfg.failoverTrials), func() error { return b.failover(ctx) }))
	}
	if want("fleet") {
		errs = append(errs, b.phase(fmt.Sprintf("fleet: %d keys at quota scale %g", b.cfg.fleetKeys, b.cfg.quotaScale), func() error { return b.fleet(ctx) }))
		if b.cfg.fleetInProcess {
			errs = append(errs, b.phase(fmt.Sprintf("fleet, functions in process: %d keys at quota scale %g", b.cfg.fleetKeys, b.cfg.quotaScale), func() error { return b.fleetInProcess(ctx) }))
		}
	}
	return errors.Join(errs...)
}

// wraps measures the bare PKCS#11 loop and the whole agent path on two
// fresh SoftHSM tokens, one after the other, same session count, same work.
func (b *runner) wraps(ctx context.Context) error {
	wk, err := bench.NewWrappingKey(bench.WrapKeyBits)
	if err != nil {
		return err
	}
	n, sessions := b.cfg.wraps, b.cfg.sessions
	verifyEvery := 10

	direct, err := hsmtest.NewSoftHSMToken(filepath.Join(b.dir, "hsm-direct"))
	if err != nil {
		return err
	}
	direct.PoolSize = sessions
	direct.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	h, err := hsm.Open(ctx, direct)
	if err != nil {
		return err
	}
	defer h.Close()

	agentDir := filepath.Join(b.dir, "hsm-agent")
	// The agent's token is the agent process's: this process's direct
	// loop keeps its own SOFTHSM2_CONF (the bench once lost the direct
	// token when the agent's replaced it and the pool re-initialised).
	tok, err := hsmtest.NewSoftHSMTokenForChild(agentDir)
	if err != nil {
		return err
	}
	stateDir := filepath.Join(b.dir, "agent-state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	ap, err := bench.StartAgentProcess(ctx, b.agent, stateDir, tok, filepath.Join(agentDir, "softhsm2.conf"), sessions)
	if err != nil {
		return err
	}
	defer ap.Close()
	time.Sleep(500 * time.Millisecond) // settle after hello
	idle, err := bench.ReadMemory(ap.PID())
	if err != nil {
		return err
	}
	// Side by side: direct and agent alternate in rounds, so load from
	// anything else on the machine falls on both alike.
	const rounds = 3
	var dr, ar bench.Rate
	var agentCPU time.Duration
	for round := range rounds {
		k := n / rounds
		r, err := bench.DirectWraps(ctx, h, wk, fmt.Sprintf("direct%d", round), sessions, k, verifyEvery)
		if err != nil {
			return err
		}
		dr.Ops, dr.Elapsed, dr.Verified = dr.Ops+r.Ops, dr.Elapsed+r.Elapsed, dr.Verified+r.Verified
		cpu0, _ := bench.CPUTime(ap.PID())
		r, err = ap.Wraps(ctx, wk, fmt.Sprintf("bench%d", round), k, 4*sessions, verifyEvery)
		if err != nil {
			return err
		}
		cpu1, _ := bench.CPUTime(ap.PID())
		agentCPU += cpu1 - cpu0
		ar.Ops, ar.Elapsed, ar.Verified, ar.Failed = ar.Ops+r.Ops, ar.Elapsed+r.Elapsed, ar.Verified+r.Verified, ar.Failed+r.Failed
		if ar.FirstFailure == "" {
			ar.FirstFailure = r.FirstFailure
		}
	}
	n = dr.Ops
	cpu0, cpu1 := time.Duration(0), agentCPU
	load, err := bench.ReadMemory(ap.PID())
	if err != nil {
		return err
	}
	note := fmt.Sprintf("%d x AES-256 keygen + RSAES_OAEP_SHA_1 wrap (RSA_4096), %d sessions, alternating with the agent in 3 rounds", n, sessions)
	b.report.Add("direct_wraps_per_s", dr.PerSecond(), "1/s", "bare agent/hsm loop, "+note)
	b.report.Add("agent_wraps_per_s", ar.PerSecond(), "1/s", "keyferry-agent process, signed requests/results over loopback websocket, policy, signed audit")
	b.report.Add("agent_wrap_errors", float64(ar.Failed), "", "requests the agent answered with an error (first: "+truncate(ar.FirstFailure, 160)+")")
	b.report.Add("agent_vs_direct_ratio", ar.PerSecond()/dr.PerSecond(), "", "agent / direct")
	b.report.Add("agent_cpu_ms_per_wrap", float64((cpu1-cpu0).Milliseconds())/float64(n), "ms", "agent process CPU (incl. SoftHSM in-process)")
	b.report.Add("agent_rss_idle_mb", idle.RSSMB, "MiB", "VmRSS after hello, before any wrap")
	b.report.Add("agent_rss_load_mb", load.PeakMB, "MiB", fmt.Sprintf("VmHWM after %d wraps", n))
	b.say("direct %.1f/s (%d blobs unwrapped and checked), agent %.1f/s (%d checked, every result signature verified)",
		dr.PerSecond(), dr.Verified, ar.PerSecond(), ar.Verified)
	return nil
}

func (b *runner) lambdaSizes(ctx context.Context) error {
	names, err := lambdaNames(b.root)
	if err != nil {
		return err
	}
	var maxSize int64
	var maxName string
	for _, n := range names {
		_, size, err := bench.BuildLambda(ctx, b.root, n, "arm64", filepath.Join(b.dir, "lambda"))
		if err != nil {
			return err
		}
		if size > maxSize {
			maxSize, maxName = size, n
		}
	}
	b.report.Add("lambda_bootstrap_max_mb", float64(maxSize)/(1<<20), "MiB", fmt.Sprintf("%s, of %d functions (arm64, -s -w, lambda.norpc)", maxName, len(names)))
	return nil
}

func lambdaNames(root string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "functions", "cmd"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (b *runner) policy() ([]byte, error) {
	return os.ReadFile(filepath.Join(b.root, "test", "sandbox", "policies", "default.json"))
}

// quotasOff runs one sandbox with unlimited quotas: the Lambda init time
// (against its DynamoDB and KMS), the CLI walkthrough vs keyferry for the
// same number of keys, and rotation latency per mode.
func (b *runner) quotasOff(ctx context.Context) error {
	pol, err := b.policy()
	if err != nil {
		return err
	}
	perGroup := 8 // in-place rotations per group, below the rotation cap of 10
	latGroups := (b.cfg.rotations + perGroup - 1) / perGroup
	lat := bench.GroupSet{Prefix: "lat", InPlace: latGroups, AliasSwap: latGroups, WrappingKeySpec: "RSA_2048"}
	cli := bench.GroupSet{Prefix: "kf20", AliasSwap: b.cfg.cliKeys, WrappingKeySpec: "RSA_2048"}
	gdir := filepath.Join(b.dir, "groups-off")
	gfile, err := bench.WriteGroupsFile(gdir, pol, lat, cli)
	if err != nil {
		return err
	}
	freshEnv()
	sb, err := sandbox.Start(ctx, sandbox.Options{GroupsFile: gfile, Dir: filepath.Join(b.dir, "sandbox-off"), AgentBinary: b.agent,
		WrappingKeyPool: b.cfg.wrapPool, JobTimeout: 5 * time.Minute, RequestTTL: 2 * time.Minute})
	if err != nil {
		return err
	}
	defer sb.Close()
	var errs []error

	// Lambda init: the rotate function for this host, with the sandbox's environment.
	if bin, _, err := bench.BuildLambda(ctx, b.root, "rotate", bench.HostArch(), filepath.Join(b.dir, "lambda")); err != nil {
		errs = append(errs, err)
	} else {
		var ds []time.Duration
		for range 5 {
			d, err := bench.LambdaInit(ctx, bin, os.Environ())
			if err != nil {
				errs = append(errs, err)
				break
			}
			ds = append(ds, d)
		}
		if len(ds) > 0 {
			b.report.Add("lambda_init_ms", bench.Millis(bench.Percentile(ds, 50)), "ms", fmt.Sprintf("rotate function, process start -> first GET /invocation/next, median of %d", len(ds)))
		}
	}

	// The same keys: the AWS CLI walkthrough, then keyferry (all at once, as the scheduler fires them).
	script := filepath.Join(b.root, "test", "bench", "testdata", "cli-walkthrough.sh")
	cliD, err := bench.CLIWalkthrough(ctx, script, sb.Env(), b.cfg.cliKeys, "cli20", "RSA_2048", filepath.Join(b.dir, "cli"))
	if err != nil {
		errs = append(errs, err)
	}
	_, names := cli.Names()
	kf := bench.Fleet(ctx, sb, sb.Deps.Store.GetJob, names, "same-keys", len(names), 100*time.Millisecond, 3*time.Minute)
	if o := bench.Summarize(kf.Samples); o.Failed > 0 {
		errs = append(errs, fmt.Errorf("keyferry same keys: %d failed, first: %w", o.Failed, o.FirstErr))
	}
	if err == nil {
		b.report.Add("cli_baseline_s", cliD.Seconds(), "s", fmt.Sprintf("%d keys, aws CLI + openssl, one at a time", b.cfg.cliKeys))
		b.report.Add("keyferry_same_keys_s", kf.Elapsed.Seconds(), "s", fmt.Sprintf("%d alias-swap groups, fired together, verified", len(names)))
		b.report.Add("speedup_vs_cli", cliD.Seconds()/kf.Elapsed.Seconds(), "x", "")
	}

	// Rotation latency: create every latency group's key first (not timed), then rotate.
	inPlace, swap := lat.Names()
	setup := bench.Rotate(ctx, sb, append(slices.Clone(inPlace), swap...), "create", 2*b.cfg.latencyWorkers, 3*time.Minute)
	if o := bench.Summarize(setup); o.Failed > 0 {
		return errors.Join(append(errs, fmt.Errorf("latency setup: %d failed, first: %w", o.Failed, o.FirstErr))...)
	}
	var every []time.Duration
	defer func() {
		if len(every) > 0 {
			b.report.Add("rotation_p50_ms", bench.Millis(bench.Percentile(every, 50)), "ms", "both modes together")
			b.report.Add("rotation_p99_ms", bench.Millis(bench.Percentile(every, 99)), "ms", "both modes together")
		}
	}()
	for _, m := range []struct {
		name, key string
		groups    []string
	}{{"in-place", "inplace", inPlace}, {"alias-swap", "aliasswap", swap}} {
		var all []bench.Sample
		for round := 1; round <= perGroup && len(all) < b.cfg.rotations; round++ {
			gs := m.groups
			if rest := b.cfg.rotations - len(all); rest < len(gs) {
				gs = gs[:rest]
			}
			all = append(all, bench.Rotate(ctx, sb, gs, fmt.Sprintf("lat%d", round), b.cfg.latencyWorkers, 3*time.Minute)...)
		}
		o := bench.Summarize(all)
		every = append(every, o.Latencies...)
		if o.Failed > 0 {
			errs = append(errs, fmt.Errorf("%s latency: %d of %d failed, first: %w", m.name, o.Failed, len(all), o.FirstErr))
		}
		modes := map[string]int{}
		for _, s := range all {
			modes[s.Mode]++
		}
		note := fmt.Sprintf("%d rotations, %d in flight, quotas off, trigger -> SUCCEEDED (modes used %v)", o.OK, b.cfg.latencyWorkers, modes)
		b.report.Add("rotation_p50_ms_"+m.key, bench.Millis(bench.Percentile(o.Latencies, 50)), "ms", note)
		b.report.Add("rotation_p99_ms_"+m.key, bench.Millis(bench.Percentile(o.Latencies, 99)), "ms", "")
	}
	return errors.Join(errs...)
}

// failoverHeartbeat is the agents' heartbeat in the failover phase: a
// silent agent is handed over after 3 of them (the default is minutes).
const failoverHeartbeat = time.Second

// failover measures how long a two-agent pool takes to move a wrap request
// from a lost agent A to agent B (bench.PoolFailover): A SIGKILLed holding
// the request, and A frozen without a FIN, failoverTrials each.
func (b *runner) failover(ctx context.Context) error {
	freshEnv()
	drop := &bench.ResultDrop{}
	sb, err := sandbox.Start(ctx, sandbox.Options{Dir: filepath.Join(b.dir, "sandbox-failover"), AgentBinary: b.agent,
		Functions: sandbox.FunctionsInProcess, Agents: 2, Heartbeat: failoverHeartbeat, GatewayFault: drop.Fault,
		JobTimeout: 2 * time.Minute, RequestTTL: time.Minute})
	if err != nil {
		return err
	}
	defer sb.Close()
	for _, mode := range []string{bench.FailoverKilled, bench.FailoverPartitioned} {
		ds, err := bench.PoolFailover(ctx, sb, drop, "webhook-mac", mode, b.cfg.failoverTrials)
		if err != nil {
			return err
		}
		how := map[string]string{
			bench.FailoverKilled:      "agent A SIGKILLed holding the request (its result lost) to agent B's wrap_result",
			bench.FailoverPartitioned: "agent A frozen without a FIN (SIGSTOP) to agent B's wrap_result; bound 3 heartbeats + 1",
		}[mode]
		b.report.Add("failover_"+mode+"_p50_ms", bench.Millis(bench.Percentile(ds, 50)), "ms", fmt.Sprintf("%s, %d trials, heartbeat %s", how, len(ds), failoverHeartbeat))
		b.report.Add("failover_"+mode+"_max_ms", bench.Millis(bench.Percentile(ds, 100)), "ms", "")
	}
	return nil
}

// fleetInProcess is the fleet run with the functions' Go handlers in this
// process (one pacer cache, no instance limits, no IAM): the figures the
// control plane had before it ran on the RIE topology, for comparison.
func (b *runner) fleetInProcess(ctx context.Context) error {
	pol, err := b.policy()
	if err != nil {
		return err
	}
	n := b.cfg.fleetKeys
	set := bench.GroupSet{Prefix: "fleetip", InPlace: n / 2, AliasSwap: n - n/2, WrappingKeySpec: "RSA_2048"}
	gfile, err := bench.WriteGroupsFile(filepath.Join(b.dir, "groups-fleet-inprocess"), pol, set)
	if err != nil {
		return err
	}
	freshEnv()
	sb, err := sandbox.Start(ctx, sandbox.Options{GroupsFile: gfile, Dir: filepath.Join(b.dir, "sandbox-fleet-inprocess"), AgentBinary: b.agent,
		Functions: sandbox.FunctionsInProcess, QuotaScale: b.cfg.quotaScale, WrappingKeyPool: b.cfg.wrapPool, JobTimeout: b.cfg.fleetTimeout + 10*time.Minute, RequestTTL: 5 * time.Minute})
	if err != nil {
		return err
	}
	defer sb.Close()
	inPlace, swap := set.Names()
	fr := bench.Fleet(ctx, sb, b.fleetReader(ctx, sb), append(inPlace, swap...), "fleetip", b.cfg.fleetTriggers, 250*time.Millisecond, b.cfg.fleetTimeout)
	o := bench.Summarize(fr.Samples)
	achieved := float64(o.OK) / fr.Elapsed.Seconds()
	b.report.Add("fleet_inprocess_keys", float64(o.OK), "", "the same fleet, functions in this process")
	b.report.Add("fleet_inprocess_keys_per_s", achieved, "1/s", fmt.Sprintf("in %.1f s", fr.Elapsed.Seconds()))
	b.report.Add("fleet_inprocess_quota_utilisation", achieved/(1*b.cfg.quotaScale), "", "achieved / bound, functions in process")
	b.report.Add("fleet_inprocess_failed_jobs", float64(o.Failed), "", "should be 0")
	b.quotaTimeline("fleet_inprocess", fr)
	if o.Failed > 0 {
		return fmt.Errorf("fleet in process: %d of %d jobs failed or did not finish", o.Failed, n)
	}
	return nil
}

// quotaTimeline reports where a fleet's elapsed time went, seen from the
// binding quota (GetParametersForImport at the pacer's interval): what
// keeps utilisation below the pacer's fraction.
func (b *runner) quotaTimeline(prefix string, fr bench.FleetResult) {
	p := pacer.New(pacer.DefaultFraction, b.cfg.quotaScale)
	interval := time.Duration(float64(time.Second) / (pacer.Quotas[string(pacer.OpGetParametersForImport)] * p.Fraction * p.Scale))
	t := fr.Timeline(interval)
	el := fr.Elapsed.Seconds()
	share := func(d time.Duration) string { return fmt.Sprintf("%.0f%% of %.1f s", 100*d.Seconds()/el, el) }
	b.report.Add(prefix+"_quota_lead_s", t.Lead.Seconds(), "s", "first trigger -> first GetParametersForImport answered, "+share(t.Lead))
	b.report.Add(prefix+"_quota_paced_s", t.Paced.Seconds(), "s", fmt.Sprintf("%d calls at the pacer's interval %s, %s", t.Calls, interval, share(t.Paced)))
	b.report.Add(prefix+"_quota_idle_s", t.Idle.Seconds(), "s", fmt.Sprintf("quota unused beyond the interval (longest %.1f s, from %.1f s), %s", t.LongestIdle.Seconds(), t.LongestIdleAt.Seconds(), share(t.Idle)))
	b.report.Add(prefix+"_quota_tail_s", t.Tail.Seconds(), "s", "last GetParametersForImport -> last job done, "+share(t.Tail))
}

// fleet rotates fleetKeys groups at once against quotas scaled by quotaScale.
func (b *runner) fleet(ctx context.Context) error {
	pol, err := b.policy()
	if err != nil {
		return err
	}
	n := b.cfg.fleetKeys
	set := bench.GroupSet{Prefix: "fleet", InPlace: n / 2, AliasSwap: n - n/2, WrappingKeySpec: "RSA_2048"}
	gfile, err := bench.WriteGroupsFile(filepath.Join(b.dir, "groups-fleet"), pol, set)
	if err != nil {
		return err
	}
	freshEnv()
	// Every DynamoDB call of the control plane passes a counting proxy.
	var ddbMu sync.Mutex
	ddbOps := map[string]int{}
	count := func(op string, _ []byte) *ddbfault.Action {
		ddbMu.Lock()
		ddbOps[op]++
		ddbMu.Unlock()
		return nil
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{GroupsFile: gfile, Dir: filepath.Join(b.dir, "sandbox-fleet"), AgentBinary: b.agent,
		QuotaScale: b.cfg.quotaScale, WrappingKeyPool: b.cfg.wrapPool, JobTimeout: b.cfg.fleetTimeout + 10*time.Minute, RequestTTL: 5 * time.Minute,
		DynamoFault: count})
	if err != nil {
		return err
	}
	defer sb.Close()
	inPlace, swap := set.Names()
	groups := append(inPlace, swap...)
	// GetParametersForImport (1/s x scale) is the binding quota: one per
	// rotation in both modes (CreateKey, 5/s x scale, is one per alias-swap).
	quotaKeys := 1 * b.cfg.quotaScale

	if b.cfg.cpuProfile != "" {
		f, err := os.Create(b.cfg.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
			if top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", b.cfg.cpuProfile).Output(); err == nil {
				b.profTop = string(top)
			}
		}()
	}
	cpu0 := bench.SnapshotCPU()
	stats0 := sb.Emulator.Stats()
	ddbMu.Lock()
	clear(ddbOps)
	ddbMu.Unlock()
	// The schedules fall due together: triggers arrive b.cfg.fleetTriggers
	// at a time (the rotate function records the job and hands it on; the
	// worker's mapping runs at most jobqueue.WorkerMaxConcurrency at once).
	// The driver's own job polling reads the jobs table through the store
	// directly, not through the counting proxy.
	fr := bench.Fleet(ctx, sb, b.fleetReader(ctx, sb), groups, "fleet", b.cfg.fleetTriggers, 250*time.Millisecond, b.cfg.fleetTimeout)
	b.fleetCPU = bench.SnapshotCPU().Sub(cpu0)
	b.fleetWall = fr.Elapsed
	stats := sb.Emulator.Stats()
	o := bench.Summarize(fr.Samples)
	throttles := 0
	for op, v := range stats.Throttled {
		throttles += v - stats0.Throttled[op]
	}
	achieved := float64(o.OK) / fr.Elapsed.Seconds()
	b.report.Add("fleet_keys", float64(o.OK), "", fmt.Sprintf("%d groups (%d in-place, %d alias-swap), %d triggers in flight", n, len(inPlace), len(swap), b.cfg.fleetTriggers))
	b.report.Add("fleet_quota_scale", b.cfg.quotaScale, "x", "AWS KMS quotas x this in the emulator")
	b.report.Add("fleet_quota_keys_per_s", quotaKeys, "1/s", "bound: GetParametersForImport 1/s x scale")
	b.report.Add("fleet_keys_per_s", achieved, "1/s", fmt.Sprintf("in %.1f s", fr.Elapsed.Seconds()))
	b.report.Add("fleet_quota_utilisation", achieved/quotaKeys, "", fmt.Sprintf("achieved / bound (the pacer aims at %.2f of quota, account-wide)", pacer.DefaultFraction))
	b.report.Add("fleet_failed_jobs", float64(o.Failed), "", "should be 0")
	b.report.Add("fleet_throttle_errors_surfaced", float64(o.Throttled), "", "jobs failed by throttling; should be 0")
	b.report.Add("fleet_throttles_absorbed", float64(throttles), "", "ThrottlingException answers the pacer retried")
	b.quotaTimeline("fleet", fr)
	if o.OK > 0 {
		rot := float64(o.OK)
		var kmsCalls int
		var kmsOps []string
		for op, v := range stats.Requests {
			if d := v - stats0.Requests[op]; d > 0 {
				kmsCalls += d
				kmsOps = append(kmsOps, fmt.Sprintf("%s %.2f", op, float64(d)/rot))
			}
		}
		sort.Strings(kmsOps)
		ddbMu.Lock()
		reads, writes := 0, 0
		var ddbList []string
		for op, v := range ddbOps {
			switch op {
			case "GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems":
				reads += v
			default:
				writes += v
			}
			ddbList = append(ddbList, fmt.Sprintf("%s %.2f", op, float64(v)/rot))
		}
		ddbMu.Unlock()
		sort.Strings(ddbList)
		b.report.Add("kms_calls_per_rotation", float64(kmsCalls)/rot, "", strings.Join(kmsOps, ", "))
		b.report.Add("dynamodb_writes_per_rotation", float64(writes)/rot, "", "control plane only; all operations per rotation: "+strings.Join(ddbList, ", "))
		b.report.Add("dynamodb_reads_per_rotation", float64(reads)/rot, "", "control plane only (the bench's own job polling excluded)")
	}
	if sb.Runtime != nil {
		b.report.Add("fleet_lambda_instances_max", float64(sb.Runtime.InstancesMax()), "", "most function instances alive at once, all functions (each its bootstrap under the RIE)")
		b.report.Add("fleet_lambda_cold_starts", float64(sb.Runtime.ColdStarts()), "", "instances started")
		for _, fn := range sb.Runtime.Names() {
			if st := sb.Runtime.Stats(fn); st.Invocations > 0 {
				b.report.Add("fleet_instances_max_"+strings.TrimPrefix(fn, "keyferry-"), float64(st.AliveMax), "", fmt.Sprintf("%d invocations, %d timeouts", st.Invocations, st.Timeouts))
			}
		}
	}
	if l := sb.IAMLedger(); l != nil {
		recs := l.Records()
		b.report.Add("fleet_iam_decisions", float64(len(recs)), "", fmt.Sprintf("calls authorized by iam-simulate from the template's policies (%d denied)", len(l.Denied())))
	}
	ws := sb.WorkerStats()
	b.report.Add("fleet_worker_invocations", float64(ws.Invocations), "", fmt.Sprintf("job-queue messages run by the worker (%d failed, %d retried)", ws.Failed, ws.Retried))
	b.report.Add("fleet_worker_in_flight_max", float64(ws.MaxInFlight), "", fmt.Sprintf("most worker invocations at once (mapping maximum concurrency %d)", jobqueue.WorkerMaxConcurrency))
	if pid := sb.AgentPID(); pid > 0 {
		if m, err := bench.ReadMemory(pid); err == nil {
			b.report.Add("agent_rss_fleet_mb", m.PeakMB, "MiB", "sandbox agent VmHWM after the fleet")
		}
	}
	if o.Failed > 0 {
		var reasons []string
		for _, s := range fr.Samples {
			if s.Err != nil && len(reasons) < 5 {
				reasons = append(reasons, s.Err.Error())
			}
		}
		return fmt.Errorf("fleet: %d of %d jobs failed or did not finish:\n  %s", o.Failed, n, strings.Join(reasons, "\n  "))
	}
	return nil
}

func (b *runner) whereTimeGoes(w io.Writer) {
	fmt.Fprintln(w, "\nwhere the time goes")
	var total time.Duration
	for _, p := range b.phaseOrder {
		total += b.phases[p]
		fmt.Fprintf(w, "  %-70s %8.1f s\n", p, b.phases[p].Seconds())
	}
	fmt.Fprintf(w, "  %-70s %8.1f s\n", "total", total.Seconds())
	if len(b.fleetCPU) > 0 {
		fmt.Fprintf(w, "\n  fleet run: %.1f s wall; CPU by process:\n", b.fleetWall.Seconds())
		type kv struct {
			k string
			v time.Duration
		}
		var rows []kv
		for k, v := range b.fleetCPU {
			rows = append(rows, kv{k, v})
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].v > rows[j].v })
		for _, r := range rows {
			fmt.Fprintf(w, "    %-40s %7.1f s CPU (%.0f%% of one core)\n", r.k, r.v.Seconds(), 100*r.v.Seconds()/b.fleetWall.Seconds())
		}
	}
	if b.profTop != "" {
		fmt.Fprintf(w, "\n  CPU profile of this process during the fleet (%s):\n", b.cfg.cpuProfile)
		lines := strings.Split(strings.TrimSpace(b.profTop), "\n")
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// freshEnv drops what an earlier sandbox of this process exported: Start
// takes AWS_ENDPOINT_URL_KMS as an external KMS endpoint, which would be
// the previous (closed) emulator.
func freshEnv() {
	os.Unsetenv("AWS_ENDPOINT_URL_KMS")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// fleetReader reads jobs for the fleet driver straight from moto_server, so
// its polling stays out of the control plane's DynamoDB counts.
func (b *runner) fleetReader(ctx context.Context, sb *sandbox.Sandbox) bench.JobGetter {
	st := store.New(dynamodb.NewFromConfig(aws.Config{Region: sandbox.Region, BaseEndpoint: aws.String(sb.MotoURL()),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: sandbox.CloudAccessKey, SecretAccessKey: sandbox.CloudSecretKey}, nil
		})}), sb.Deps.Store.Tables())
	return st.GetJob
}
