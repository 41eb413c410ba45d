package pacer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyferry/keyferry/functions/awsconfig"
	"github.com/keyferry/keyferry/functions/pacer"
	"github.com/keyferry/keyferry/functions/store"
	"github.com/keyferry/keyferry/test/kmsemu"
	"github.com/keyferry/keyferry/test/motoserver"
)

// The instance process: each one is what a Lambda instance is, a process
// of its own with its own Pacer, sharing nothing with the others but
// DynamoDB and KMS.
const (
	envInstance = "KEYFERRY_PACER_INSTANCE"
	envKMS      = "KEYFERRY_PACER_KMS"
	envDynamo   = "KEYFERRY_PACER_DYNAMODB"
	envTable    = "KEYFERRY_PACER_TABLE"
	envCalls    = "KEYFERRY_PACER_CALLS"
	envScale    = "KEYFERRY_PACER_SCALE"
	envStartAt  = "KEYFERRY_PACER_START_AT"
)

var creds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIAPACERTEST", SecretAccessKey: "not-a-secret"}, nil
})

// instanceResult is what one instance process reports on stdout.
type instanceResult struct {
	Calls     int     `json:"calls"`
	Failed    int     `json:"failed"`
	Throttled int     `json:"throttled"`
	Seconds   float64 `json:"seconds"`
	Error     string  `json:"error,omitempty"`
}

// TestPacerInstanceProcess is not a test: it is the body of one instance
// process started by TestPacingHoldsAcrossInstances (it returns at once
// when run without its environment).
func TestPacerInstanceProcess(t *testing.T) {
	if os.Getenv(envInstance) == "" {
		return
	}
	res := runInstance()
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func runInstance() instanceResult {
	var res instanceResult
	calls, _ := strconv.Atoi(os.Getenv(envCalls))
	scale, _ := strconv.ParseFloat(os.Getenv(envScale), 64)
	startAt, _ := strconv.ParseInt(os.Getenv(envStartAt), 10, 64)
	p := pacer.New(0.8, scale)
	p.MaxThrottleRetries = 50
	if table := os.Getenv(envTable); table != "" {
		db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(os.Getenv(envDynamo)), Credentials: creds})
		p.Ledger = &pacer.Ledger{DB: db, Table: table}
		p.MaxWait = time.Minute
	}
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(os.Getenv(envKMS)), Retryer: awsconfig.NewRetryer(), Credentials: creds})
	time.Sleep(time.Until(time.UnixMilli(startAt)))
	start := time.Now()
	for range calls {
		err := p.Do(context.Background(), "111122223333/us-east-1", "CreateKey", func(ctx context.Context) error {
			_, err := c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
			return err
		})
		res.Calls++
		if err != nil {
			res.Failed++
			res.Error = err.Error()
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Throttled = p.Throttled("111122223333/us-east-1", "CreateKey")
	return res
}

// TestPacingHoldsAcrossInstances: several instance processes (the rotate
// function at concurrency N) call CreateKey together against the KMS
// emulator enforcing AWS's quota. With the account-wide ledger in
// DynamoDB (moto_server) the account never sees a ThrottlingException and
// the calls are spaced at the paced rate whatever N is; with one
// in-memory limiter per instance (the design before it) N instances each
// take the whole quota and KMS throttles them.
func TestPacingHoldsAcrossInstances(t *testing.T) {
	if os.Getenv(envInstance) != "" {
		return
	}
	const table = "keyferry-pacing"
	_, moto := pacingTable(t, table)

	const (
		instances = 4
		calls     = 8
		scale     = 2.0 // CreateKey 5/s x 2 = 10/s at the emulator; paced at 80 %: 8/s
	)
	cases := []struct {
		name           string
		shared         bool
		wantThrottled  bool
		minSpreadShare float64 // the run takes at least this share of (calls-1)/paced rate
	}{
		{"account-wide ledger", true, false, 0.9},
		{"one in-memory limiter per instance (before)", false, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			emu := kmsemu.New(kmsemu.Options{Region: "us-east-1", Account: "111122223333", QuotaScale: scale, WrappingKeyPool: -1})
			if err := emu.Start("127.0.0.1:0"); err != nil {
				t.Fatal(err)
			}
			defer emu.Close()
			env := append(os.Environ(),
				envInstance+"=1", envKMS+"="+emu.URL(), envDynamo+"="+moto.URL(),
				envCalls+"="+strconv.Itoa(calls), envScale+"="+strconv.FormatFloat(scale, 'f', -1, 64),
				envStartAt+"="+strconv.FormatInt(time.Now().Add(1500*time.Millisecond).UnixMilli(), 10))
			if tc.shared {
				env = append(env, envTable+"="+table)
			}
			results := make([]instanceResult, instances)
			var wg sync.WaitGroup
			pids := map[int]bool{}
			var mu sync.Mutex
			for i := range instances {
				cmd := exec.Command(os.Args[0], "-test.run=^TestPacerInstanceProcess$", "-test.count=1")
				cmd.Env = env
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				pids[cmd.Process.Pid] = true
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					sc := bufio.NewScanner(out)
					for sc.Scan() {
						line := strings.TrimSpace(sc.Text())
						if strings.HasPrefix(line, "{") {
							_ = json.Unmarshal([]byte(line), &results[i])
						}
					}
					if err := cmd.Wait(); err != nil {
						results[i].Error = fmt.Sprintf("instance exited: %v", err)
					}
				}()
			}
			wg.Wait()
			if len(pids) != instances {
				t.Fatalf("%d instance processes, want %d", len(pids), instances)
			}
			var slowest float64
			for i, r := range results {
				if r.Calls != calls || r.Failed != 0 || (r.Error != "" && !tc.wantThrottled) {
					t.Fatalf("instance %d: %+v", i, r)
				}
				slowest = max(slowest, r.Seconds)
			}
			throttled := emu.Stats().Throttled["CreateKey"]
			if (throttled > 0) != tc.wantThrottled {
				t.Fatalf("KMS answered %d ThrottlingExceptions to %d instances, want throttling=%v", throttled, instances, tc.wantThrottled)
			}
			if created := emu.Stats().Requests["CreateKey"] - throttled; created != instances*calls {
				t.Fatalf("%d keys created, want %d", created, instances*calls)
			}
			paced := 5 * scale * 0.8
			if want := tc.minSpreadShare * float64(instances*calls-1) / paced; slowest < want {
				t.Fatalf("%d calls from %d instances took %.2fs, want at least %.2fs at %.0f/s account-wide", instances*calls, instances, slowest, want, paced)
			}
			t.Logf("%d instances x %d calls: %.2fs, %d throttles at KMS", instances, calls, slowest, throttled)
		})
	}
}

// TestLedgerPacedOutTakesNoSlot: a caller whose slot would come after its
// deadline is told at once (PacedOutError with the queue's end) and the
// queue does not grow, so waiting callers are not pushed back by it.
func TestLedgerPacedOutTakesNoSlot(t *testing.T) {
	if os.Getenv(envInstance) != "" {
		return
	}
	ctx := context.Background()
	db, _ := pacingTable(t, "pacing")
	now := time.UnixMilli(time.Now().UnixMilli())
	clock := func() time.Time { return now }
	p := pacer.New(1, 1) // GetParametersForImport: 1/s, one slot a second
	p.Ledger = &pacer.Ledger{DB: db, Table: "pacing", Now: clock}
	p.MaxWait = 2500 * time.Millisecond
	var ran int
	call := func(context.Context) error { ran++; return nil }
	// Slots at now+0s (taken at once: no sleep), then the queue is at now+1s.
	if err := p.Do(ctx, "a/r", "GetParametersForImport", call); err != nil {
		t.Fatal(err)
	}
	// Deadline-bound caller: latest usable slot = deadline - margin < now+1s.
	dctx, cancel := context.WithDeadline(ctx, now.Add(pacer.DeadlineMargin+500*time.Millisecond))
	defer cancel()
	err := p.Do(dctx, "a/r", "GetParametersForImport", call)
	var po *pacer.PacedOutError
	if !errors.As(err, &po) || !errors.Is(err, pacer.ErrPacedOut) {
		t.Fatalf("got %v, want a PacedOutError", err)
	}
	if !po.Next.Equal(now.Add(time.Second)) {
		t.Fatalf("PacedOutError.Next = %s, want the queue's end %s", po.Next, now.Add(time.Second))
	}
	if ran != 1 {
		t.Fatalf("the paced-out call ran (%d calls)", ran)
	}
	// The queue did not grow: the next caller's slot is still now+1s.
	now = now.Add(time.Second)
	if err := p.Do(ctx, "a/r", "GetParametersForImport", call); err != nil || ran != 2 {
		t.Fatalf("next caller: err=%v ran=%d", err, ran)
	}
	// An idle bucket (its TAT long past) gives the next caller now, and
	// the one after it now+1s: no burst of the slots that went unused.
	now = now.Add(time.Hour)
	if err := p.Do(ctx, "a/r", "GetParametersForImport", call); err != nil || ran != 3 {
		t.Fatalf("after idle: err=%v ran=%d", err, ran)
	}
	dctx2, cancel2 := context.WithDeadline(ctx, now.Add(pacer.DeadlineMargin+500*time.Millisecond))
	defer cancel2()
	if err := p.Do(dctx2, "a/r", "GetParametersForImport", call); !errors.As(err, &po) || !po.Next.Equal(now.Add(time.Second)) {
		t.Fatalf("after idle, second caller: %v, want paced out until %s", err, now.Add(time.Second))
	}
}

// TestLedgerHighRateDoesNotLoop: a bucket whose rate is far above what its
// callers can use (quotas scaled x1000: one slot a millisecond) lags
// behind the clock on every call; 40 concurrent callers still each get a
// slot at once instead of fighting over resetting it (the bench once
// failed 8 jobs with "kept moving under 64 tries").
func TestLedgerHighRateDoesNotLoop(t *testing.T) {
	if os.Getenv(envInstance) != "" {
		return
	}
	ctx := context.Background()
	db, _ := pacingTable(t, "pacing")
	p := pacer.New(0.8, 1000)
	p.Ledger = &pacer.Ledger{DB: db, Table: "pacing"}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				errs <- p.Do(ctx, "a/r", "CreateKey", func(context.Context) error { return nil })
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// pacingTable starts moto_server with a pacing table named name.
func pacingTable(t *testing.T, name string) (*dynamodb.Client, *motoserver.Server) {
	t.Helper()
	ctx := context.Background()
	moto, err := motoserver.StartSerialized(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Close)
	db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto.URL()), Credentials: creds})
	in := store.TableSchemas(store.Tables{Pacing: name})
	for i := range in {
		if aws.ToString(in[i].TableName) != name {
			continue
		}
		if _, err := db.CreateTable(ctx, &in[i]); err != nil {
			t.Fatal(err)
		}
	}
	return db, moto
}
