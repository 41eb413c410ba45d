package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/keyferry/keyferry/test/bench"
	"github.com/keyferry/keyferry/test/sandbox"
)

// failoverHeartbeat is the agents' heartbeat in TestPoolFailoverTime: a
// silent agent is handed over after 3 of them.
const failoverHeartbeat = time.Second

// kindFailover: two agents with a 1 s heartbeat, a gateway that can lose
// agent A's results, the functions in this process.
const kindFailover = "failover"

var failoverDrop = &bench.ResultDrop{}

// failoverTrials per mode: 5 keeps the test near 40 s (a trial is about
// 6 s: the rotation, then agent A back); the bench's figures take 20
// (bench.PoolFailover; 20 each ran 245 s here: killed p50 419 ms, max
// 1.745 s; partitioned p50 3.561 s, max 4.64 s, heartbeat 1 s).
const failoverTrials = 5

func useFailoverSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sbMu.Lock()
	defer sbMu.Unlock()
	if sbCur != nil && sbKind == kindFailover {
		return sbCur
	}
	closeSandbox()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := sandbox.Start(ctx, sandbox.Options{
		Functions: sandbox.FunctionsInProcess, AgentBinary: agentBinary, JobTimeout: jobTimeout, RequestTTL: requestTTL,
		Agents: 2, Heartbeat: failoverHeartbeat, GatewayFault: failoverDrop.Fault,
	})
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	sbCur, sbKind, sbClock = s, kindFailover, &shiftClock{}
	return s
}

// TestPoolFailoverTime measures, over failoverTrials trials each, the time from
// losing agent A with a wrap request (SIGKILL with its result lost at the
// gateway; or frozen, a partition without a FIN) to the job's wrap_result
// from agent B. Every job SUCCEEDS via B; the partition's figures stay
// within the stated bound (3 heartbeat intervals plus one, plus the
// rotation's own work).
func TestPoolFailoverTime(t *testing.T) {
	s := useFailoverSandbox(t)
	dumpAgentLog(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	trials := failoverTrials
	for _, mode := range []string{bench.FailoverKilled, bench.FailoverPartitioned} {
		ds, err := bench.PoolFailover(ctx, s, failoverDrop, "webhook-mac", mode, trials)
		if err != nil {
			t.Fatal(err)
		}
		p50, mx := bench.Percentile(ds, 50), bench.Percentile(ds, 100)
		t.Logf("failover %s: p50 %s, max %s over %d trials (heartbeat %s)", mode, p50.Round(time.Millisecond), mx.Round(time.Millisecond), len(ds), failoverHeartbeat)
		if mode == bench.FailoverPartitioned {
			if bound := 4*failoverHeartbeat + 5*time.Second; mx > bound {
				t.Errorf("silent partition handed over after %s, bound %s", mx, bound)
			}
			if p50 < 2*failoverHeartbeat {
				t.Errorf("silent partition handed over after %s: sooner than the lapse can have been seen", p50)
			}
		}
	}
}
