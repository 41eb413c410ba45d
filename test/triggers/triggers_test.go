package triggers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyferry/keyferry/functions/handlers"
	"github.com/keyferry/keyferry/test/cfntemplate"
	"github.com/keyferry/keyferry/test/lambdaemu"
	"github.com/keyferry/keyferry/test/motoserver"
	"github.com/keyferry/keyferry/test/triggers"
)

const (
	account = "111122223333"
	region  = "us-east-1"
)

var (
	tpl  *cfntemplate.Template
	root string
)

// TestMain loads the synthesized template (cdk.out of `make synth`), or
// synthesizes one from examples/key-groups.yaml with dummy assets.
func TestMain(m *testing.M) {
	os.Exit(func() int {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		root = filepath.Dir(strings.TrimSpace(string(out)))
		if tpl, err = cfntemplate.LoadStack(filepath.Join(root, "cdk.out"), "keyferry-"+account+"-"+region); err != nil {
			dir, err := os.MkdirTemp("", "triggers-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			fns, _ := filepath.Glob(filepath.Join(root, "functions/cmd/*"))
			for _, f := range fns {
				d := filepath.Join(dir, "assets", filepath.Base(f))
				os.MkdirAll(d, 0o755)
				os.WriteFile(filepath.Join(d, "bootstrap"), []byte("#!/bin/sh\n"), 0o755)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if tpl, err = cfntemplate.Synth(ctx, cfntemplate.SynthOptions{ModuleRoot: root, GroupsFile: filepath.Join(root, "examples/key-groups.yaml"),
				LambdaAssets: filepath.Join(dir, "assets"), OutDir: filepath.Join(dir, "cdk.out")}); err != nil {
				fmt.Fprintln(os.Stderr, "synth:", err)
				return 1
			}
		}
		return m.Run()
	}())
}

// call is one recorded invocation.
type call struct {
	function string
	payload  []byte
}

// env is moto_server (SQS, CloudWatch) and the Lambda Invoke API with
// recording functions, behind a proxy that can throttle a function.
type env struct {
	moto     *motoserver.Server
	lam      *lambdaemu.Server
	proxy    *httptest.Server
	mu       sync.Mutex
	calls    []call
	throttle sync.Map // function name -> *atomic.Int32 (429s left; <0: forever)
	sqs      *sqs.Client
}

var creds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIATRIGGERSTEST", SecretAccessKey: "not-a-secret"}, nil
})

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{}
	var err error
	if e.moto, err = motoserver.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.moto.Close)
	e.lam = lambdaemu.New(lambdaemu.Options{Region: region, Account: account})
	for _, fn := range []string{"keyferry-rotate", "keyferry-keepalive"} {
		e.lam.Register(fn, func(ctx context.Context, p json.RawMessage) (any, error) {
			e.mu.Lock()
			e.calls = append(e.calls, call{fn, append([]byte(nil), p...)})
			e.mu.Unlock()
			return map[string]string{"ok": fn}, nil
		})
	}
	e.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, fn := range []string{"keyferry-rotate", "keyferry-keepalive"} {
			if !strings.Contains(r.URL.Path, fn) {
				continue
			}
			if v, ok := e.throttle.Load(fn); ok {
				n := v.(*atomic.Int32)
				if left := n.Add(-1); left >= 0 || left < -1000 {
					w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					w.Write([]byte(`{"message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`))
					return
				}
			}
		}
		e.lam.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { e.proxy.Close(); e.lam.Close() })
	e.sqs = sqs.New(sqs.Options{Region: region, Credentials: creds, BaseEndpoint: aws.String(e.moto.URL())})
	return e
}

// throttleFor makes the next n invokes of fn answer 429 (n < 0: all).
func (e *env) throttleFor(fn string, n int32) {
	v := &atomic.Int32{}
	if n < 0 {
		n = -2000
	}
	v.Store(n)
	e.throttle.Store(fn, v)
}

// waitCalls waits until n invocations were recorded (Event invocations
// run in the background) and returns them.
func (e *env) waitCalls(t *testing.T, n int) []call {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		got := append([]call(nil), e.calls...)
		e.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("recorded %d invocations, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) reset() {
	e.lam.Wait()
	e.mu.Lock()
	e.calls = nil
	e.mu.Unlock()
}

func (e *env) deliverer(t *testing.T, dup float64, extra map[string]any) (*triggers.Deliverer, *cfntemplate.Resolver) {
	return e.delivererAt(t, 1000, dup, extra)
}

// delivererAt runs the clock scale times real time (1000: a 1 s back-off
// takes 1 ms; the real latency of a call counts 1000 times as well).
func (e *env) delivererAt(t *testing.T, scale, dup float64, extra map[string]any) (*triggers.Deliverer, *cfntemplate.Resolver) {
	t.Helper()
	d, err := triggers.NewDeliverer(triggers.Options{LambdaEndpoint: e.proxy.URL, SQSEndpoint: e.moto.URL(), Region: region, Account: account,
		Credentials: creds, Clock: triggers.NewClock(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), scale), Duplicate: dup, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	return d, triggers.Resolver(tpl, account, region, extra)
}

func TestExpressionNext(t *testing.T) {
	start := time.Date(2026, 3, 28, 10, 0, 0, 0, time.UTC)
	paris, _ := time.LoadLocation("Europe/Paris")
	for _, tc := range []struct {
		expr, tz    string
		after, want time.Time
	}{
		{"rate(5 minutes)", "", start.Add(7 * time.Minute), start.Add(10 * time.Minute)},
		{"rate(1 day)", "UTC", start.Add(-time.Hour), start},
		{"rate(90 days)", "UTC", start, start.Add(90 * 24 * time.Hour)},
		// 03:00 Paris on Monday; the clocks change on Sunday 29 March 2026.
		{"cron(0 3 ? * MON *)", "Europe/Paris", start, time.Date(2026, 3, 30, 3, 0, 0, 0, paris)},
		{"cron(0 3 ? * MON *)", "Europe/Paris", start, time.Date(2026, 3, 30, 1, 0, 0, 0, time.UTC)},
		{"cron(15,45 */6 * * ? *)", "UTC", start, time.Date(2026, 3, 28, 12, 15, 0, 0, time.UTC)},
		{"cron(0 12 L * ? *)", "UTC", start, time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)},
		{"cron(0 0 1 JAN ? 2027)", "UTC", start, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"at(2026-04-01T09:30:00)", "Europe/Paris", start, time.Date(2026, 4, 1, 7, 30, 0, 0, time.UTC)},
		{"at(2026-04-01T09:30:00)", "UTC", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
	} {
		e, err := triggers.ParseExpression(tc.expr, tc.tz)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := e.Next(start, tc.after); !got.Equal(tc.want) {
			t.Errorf("%s in %q after %s: next %s, want %s", tc.expr, tc.tz, tc.after, got, tc.want)
		}
	}
	for _, bad := range []string{"rate(1 minutes)", "rate(0 hours)", "rate(5 weeks)", "cron(0 3 * * *)", "cron(0 3 * * MON *)", "cron(61 3 ? * MON *)", "at(tomorrow)", "every(5m)"} {
		if _, err := triggers.ParseExpression(bad, "UTC"); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
	if _, err := triggers.ParseExpression("rate(1 hour)", "Mars/Olympus"); err == nil {
		t.Error("unknown time zone accepted")
	}
}

func TestPatternMatch(t *testing.T) {
	alarmRule := map[string]any{"source": []any{"aws.cloudwatch"}, "detail-type": []any{"CloudWatch Alarm State Change"},
		"detail": map[string]any{"alarmName": []any{map[string]any{"prefix": "keyferry-"}}, "state": map[string]any{"value": []any{"ALARM"}}}}
	ev := func(name, state string) map[string]any {
		return map[string]any{"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
			"detail": map[string]any{"alarmName": name, "state": map[string]any{"value": state}}}
	}
	for _, tc := range []struct {
		name    string
		pattern map[string]any
		event   map[string]any
		want    bool
	}{
		{"prefix and exact", alarmRule, ev("keyferry-g1-surge", "ALARM"), true},
		{"other prefix", alarmRule, ev("other-g1", "ALARM"), false},
		{"state OK", alarmRule, ev("keyferry-g1", "OK"), false},
		{"detail missing", alarmRule, map[string]any{"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change"}, false},
		{"array field", map[string]any{"resources": []any{"arn:b"}}, map[string]any{"resources": []any{"arn:a", "arn:b"}}, true},
		{"anything-but", map[string]any{"source": []any{map[string]any{"anything-but": []any{"aws.kms"}}}}, map[string]any{"source": "aws.kms"}, false},
		{"exists false", map[string]any{"x": []any{map[string]any{"exists": false}}}, map[string]any{"y": 1.0}, true},
		{"number", map[string]any{"n": []any{5.0}}, map[string]any{"n": 5.0}, true},
	} {
		got, err := triggers.Match(tc.pattern, tc.event)
		if err != nil || got != tc.want {
			t.Errorf("%s: match %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := triggers.Match(map[string]any{"n": []any{map[string]any{"numeric": []any{">", 1.0}}}}, map[string]any{"n": 2.0}); err == nil {
		t.Error("numeric operator: no error (unimplemented forms must not silently match or miss)")
	}
}

// TestSchedulesDeliverExactInput: every schedule of the synthesized
// template fires through the Lambda Invoke API, as an Event invocation,
// with exactly its Input bytes, its flexible-window delay within the window.
func TestSchedulesDeliverExactInput(t *testing.T) {
	e := newEnv(t)
	d, r := e.deliverer(t, 0, nil)
	s, err := triggers.NewScheduler(context.Background(), tpl, r, d, d.Clock().Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Schedules) < 3 {
		t.Fatalf("template has %d schedules", len(s.Schedules))
	}
	for _, sc := range s.Schedules {
		e.reset()
		ex, err := s.FireNext(context.Background(), sc, false)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Err != nil || ex.Delivered != 1 || ex.Attempts != 1 {
			t.Fatalf("%s: %+v", sc.LogicalID, ex)
		}
		if sc.WindowMode == "FLEXIBLE" && ex.WindowDelay >= time.Duration(sc.WindowMinutes)*time.Minute {
			t.Errorf("%s: window delay %s outside %d min", sc.LogicalID, ex.WindowDelay, sc.WindowMinutes)
		}
		if sc.WindowMode == "OFF" && ex.WindowDelay != 0 {
			t.Errorf("%s: window OFF but delay %s", sc.LogicalID, ex.WindowDelay)
		}
		got := e.waitCalls(t, 1)[0]
		if string(got.payload) != sc.Input || !sc.HasInput {
			t.Errorf("%s: function got %q, template Input %q", sc.LogicalID, got.payload, sc.Input)
		}
		if want := sc.TargetARN[strings.LastIndex(sc.TargetARN, ":")+1:]; got.function != want {
			t.Errorf("%s: invoked %s, want %s", sc.LogicalID, got.function, want)
		}
		if next := sc.Due(d.Clock().Now()); !next.After(ex.ScheduledTime) {
			t.Errorf("%s: next due %s not after %s", sc.LogicalID, next, ex.ScheduledTime)
		}
	}
}

// TestSchedulerRetriesThenDeadLetters: a throttled target is retried per
// the schedule's RetryPolicy (MaximumRetryAttempts 3: 4 attempts), then
// the Input lands in the template's DLQ (moto SQS) with Scheduler's
// attributes; a throttle that clears before the retries run out delivers
// once; a missing function is not retried.
func TestSchedulerRetriesThenDeadLetters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d, r := e.deliverer(t, 0, map[string]any{"FnkeepaliveFE90E7BA.Arn": "arn:aws:lambda:us-east-1:111122223333:function:keyferry-missing"})
	s, err := triggers.NewScheduler(ctx, tpl, r, d, d.Clock().Now())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.Schedule("Scheduletokensigning4D8E8F90")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Retry.MaximumRetryAttempts != 3 || sc.DLQURL == "" {
		t.Fatalf("template retry policy %+v, DLQ %q", sc.Retry, sc.DLQURL)
	}
	e.throttleFor("keyferry-rotate", -1)
	ex, err := s.FireNext(ctx, sc, false)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Attempts != 4 || ex.Delivered != 0 || !ex.DeadLettered {
		t.Fatalf("throttled: %+v", ex)
	}
	msgs := receive(t, e, sc.DLQURL, 1)
	m := msgs[0]
	if aws.ToString(m.Body) != sc.Input {
		t.Errorf("DLQ body %q, want the Input %q", aws.ToString(m.Body), sc.Input)
	}
	want := map[string]string{"ERROR_CODE": "TooManyRequestsException", "RETRY_ATTEMPTS": "3", "SCHEDULE_ARN": sc.ARN,
		"TARGET_ARN": sc.TargetARN, "EXECUTION_ID": ex.ExecutionID}
	for k, v := range want {
		if got := aws.ToString(m.MessageAttributes[k].StringValue); got != v {
			t.Errorf("DLQ attribute %s = %q, want %q", k, got, v)
		}
	}
	if aws.ToString(m.MessageAttributes["ERROR_MESSAGE"].StringValue) == "" {
		t.Error("DLQ message has no ERROR_MESSAGE")
	}

	// Two throttles, then success: three attempts, one delivery, no DLQ.
	e.reset()
	e.throttleFor("keyferry-rotate", 2)
	ex, _ = s.FireNext(ctx, sc, false)
	if ex.Attempts != 3 || ex.Delivered != 1 || ex.DeadLettered {
		t.Fatalf("throttled twice: %+v", ex)
	}
	e.waitCalls(t, 1)

	// Function not found: a client error, dead-lettered with no retry.
	sw, _ := s.Schedule("ScheduleSweeper6A66DCCB")
	ex, _ = s.FireNext(ctx, sw, false)
	if ex.Attempts != 1 || !ex.DeadLettered {
		t.Fatalf("missing function: %+v", ex)
	}
	m = receive(t, e, sw.DLQURL, 1)[0]
	if got := aws.ToString(m.MessageAttributes["ERROR_CODE"].StringValue); got != "ResourceNotFoundException" {
		t.Errorf("missing function: ERROR_CODE %q", got)
	}
	if st := d.Stats(); st.DeadLetters != 2 || st.Invokes != 8 {
		t.Errorf("stats %+v, want 2 dead letters of 8 invokes", st)
	}
}

func receive(t *testing.T, e *env, url string, n int) []sqstypes.Message {
	t.Helper()
	var out []sqstypes.Message
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		res, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			out = append(out, m)
			e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(out) != n {
		t.Fatalf("DLQ had %d messages, want %d", len(out), n)
	}
	return out
}

// TestDuplicateDelivery: with Duplicate 0.3 some invocations arrive twice
// (at least once, sometimes twice), and the function sees every one.
func TestDuplicateDelivery(t *testing.T) {
	e := newEnv(t)
	d, r := e.deliverer(t, 0.3, nil)
	s, err := triggers.NewScheduler(context.Background(), tpl, r, d, d.Clock().Now())
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := s.Schedule("ScheduleSweeper6A66DCCB")
	const n = 60
	twice := 0
	for range n {
		ex, err := s.FireNext(context.Background(), sc, false)
		if err != nil || ex.Delivered < 1 {
			t.Fatalf("%+v %v", ex, err)
		}
		if ex.Delivered == 2 {
			twice++
		}
	}
	if twice < 5 || twice > 35 {
		t.Errorf("%d of %d delivered twice at p=0.3", twice, n)
	}
	calls := e.waitCalls(t, n+twice)
	for _, c := range calls {
		if string(c.payload) != sc.Input {
			t.Fatalf("duplicate changed the payload: %q", c.payload)
		}
	}
}

// TestKMSEventsReachTheirRule: the template routes KMS material expiry and
// rotation events to keepalive (and nothing else there); the function gets
// the EventBridge envelope.
func TestKMSEventsReachTheirRule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d, r := e.deliverer(t, 0, nil)
	bus, err := triggers.NewBus(ctx, tpl, r, d)
	if err != nil {
		t.Fatal(err)
	}
	key := "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	at := d.Clock().Now()
	exp, _ := d.KMSExpirationEvent(key, "", at)
	rot, _ := d.KMSRotationEvent(key, "EXTERNAL", "ON_DEMAND", "aa11", "bb22", at)
	other, _ := d.NewEvent("aws.ec2", "EC2 Instance State-change Notification", at, nil, map[string]string{"state": "running"})
	for _, tc := range []struct {
		ev   triggers.Event
		want int
	}{{exp, 1}, {rot, 1}, {other, 0}} {
		e.reset()
		dels, err := bus.Put(ctx, tc.ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(dels) != tc.want {
			t.Fatalf("%s: %d deliveries, want %d", tc.ev.DetailType, len(dels), tc.want)
		}
		if tc.want == 0 {
			continue
		}
		c := e.waitCalls(t, 1)[0]
		if c.function != "keyferry-keepalive" || dels[0].Rule != "KMSKeyMaterialEventsB57F91FA" {
			t.Errorf("%s went to %s via %s", tc.ev.DetailType, c.function, dels[0].Rule)
		}
		var got map[string]any
		if err := json.Unmarshal(c.payload, &got); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"} {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: envelope has no %q", tc.ev.DetailType, k)
			}
		}
		detail := got["detail"].(map[string]any)
		if detail["key-id"] != "1234abcd-12ab-34cd-56ef-1234567890ab" || got["source"] != "aws.kms" || got["account"] != account {
			t.Errorf("%s: %s", tc.ev.DetailType, c.payload)
		}
		if tc.ev.DetailType == triggers.DetailKMSRotation && (detail["previous-key-material-id"] != "aa11" || detail["current-key-material-id"] != "bb22") {
			t.Errorf("rotation detail %v", detail)
		}
	}
}

// TestAlarmActionPayload: an alarm like the engine's (AlarmActions the
// rotate function) is set to ALARM in moto's CloudWatch; rotate gets the
// documented Lambda alarm payload directly and the EventBridge state
// change through the template's rule, both shaped like the handler's
// fixtures and parsed by its types; an alarm the template's permission
// does not cover is refused; OK changes deliver no action.
func TestAlarmActionPayload(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d, r := e.deliverer(t, 0, nil)
	bus, err := triggers.NewBus(ctx, tpl, r, d)
	if err != nil {
		t.Fatal(err)
	}
	perms, err := triggers.ResolvePermissions(tpl, r)
	if err != nil {
		t.Fatal(err)
	}
	al := triggers.NewAlarms(d, e.moto.URL(), bus, perms)
	rotate := "arn:aws:lambda:us-east-1:111122223333:function:keyferry-rotate"
	for _, name := range []string{"keyferry-payments-data-surge", "other-alarm"} {
		_, err := al.CW.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), AlarmDescription: aws.String("keyferry surge"), ActionsEnabled: aws.Bool(true),
			AlarmActions: []string{rotate}, Namespace: aws.String("AWS/KMS"), MetricName: aws.String("SuccessfulRequest"),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("KeyArn"), Value: aws.String("arn:aws:kms:us-east-1:111122223333:key/k1")}, {Name: aws.String("Operation"), Value: aws.String("Decrypt")}},
			Statistic:  cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(100000),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	del, err := al.SetState(ctx, "keyferry-payments-data-surge", cwtypes.StateValueAlarm, "Threshold Crossed: test", `{"version":"1.0"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Direct) != 1 || del.Direct[0].Delivered != 1 || len(del.Events) != 1 || del.Events[0].Rule != "AlarmStateChange8E2014C5" {
		t.Fatalf("deliveries: direct %+v events %+v", del.Direct, del.Events)
	}
	calls := e.waitCalls(t, 2)
	var direct, viaBus []byte
	for _, c := range calls {
		if c.function != "keyferry-rotate" {
			t.Errorf("alarm reached %s", c.function)
		}
		if strings.Contains(string(c.payload), `"alarmArn"`) {
			direct = c.payload
		} else {
			viaBus = c.payload
		}
	}
	if direct == nil || viaBus == nil {
		t.Fatalf("payloads: direct %s, bus %s", direct, viaBus)
	}
	var ev handlers.CloudWatchAlarmEvent
	if err := json.Unmarshal(direct, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Source != "aws.cloudwatch" || ev.AccountID != account || ev.Region != region || ev.AlarmData.AlarmName != "keyferry-payments-data-surge" ||
		ev.AlarmData.State.Value != handlers.AlarmStateAlarm || ev.AlarmData.PreviousState.Value == "" || !strings.HasSuffix(ev.AlarmARN, ":alarm:keyferry-payments-data-surge") {
		t.Errorf("direct payload: %s", direct)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000-0700", ev.AlarmData.State.Timestamp); err != nil {
		t.Errorf("state timestamp %q not in CloudWatch's form: %v", ev.AlarmData.State.Timestamp, err)
	}
	var sc handlers.AlarmStateChangeEvent
	if err := json.Unmarshal(viaBus, &sc); err != nil {
		t.Fatal(err)
	}
	if sc.DetailType != handlers.DetailTypeAlarmStateChange || sc.Detail.State.Timestamp != ev.AlarmData.State.Timestamp || len(sc.Resources) != 1 || sc.Resources[0] != ev.AlarmARN {
		t.Errorf("bus payload: %s", viaBus)
	}
	// The delivered bytes have the keys of the handler's fixtures (real
	// payloads): exactly those of the direct one; at least those of the
	// EventBridge one (which abbreviates configuration).
	for _, tc := range []struct {
		fixture string
		got     []byte
		exact   bool
	}{{"alarm-direct.json", direct, true}, {"alarm-eventbridge.json", viaBus, false}} {
		fx, err := os.ReadFile(filepath.Join(root, "functions/handlers/testdata", tc.fixture))
		if err != nil {
			t.Fatal(err)
		}
		want, got := keys(t, fx), keys(t, tc.got)
		for _, k := range want {
			if !slices.Contains(got, k) {
				t.Errorf("%s: delivered payload lacks %s", tc.fixture, k)
			}
		}
		if tc.exact && !slices.Equal(want, got) {
			t.Errorf("%s: delivered keys %v, fixture keys %v", tc.fixture, got, want)
		}
	}

	e.reset()
	if _, err := al.SetState(ctx, "other-alarm", cwtypes.StateValueAlarm, "x", ""); err == nil {
		t.Error("an alarm outside the permission's SourceArn (alarm:keyferry-*) invoked rotate")
	}
	del, err = al.SetState(ctx, "keyferry-payments-data-surge", cwtypes.StateValueOk, "back", "")
	if err != nil || len(del.Direct) != 0 || len(del.Events) != 0 {
		t.Errorf("OK: direct %v events %v err %v (the template's rule matches ALARM only)", del.Direct, del.Events, err)
	}
	if _, err := al.SetState(ctx, "no-such-alarm", cwtypes.StateValueAlarm, "x", ""); err == nil {
		t.Error("unknown alarm: no error")
	}
}

// keys lists every key path of a JSON document (arrays by their first
// element), sorted; reasonData and previousState.reasonData
// are optional in CloudWatch's payloads and left out.
func keys(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "reasonData" || p == ".alarmData.configuration.metrics[].metricStat.metric.dimensions" {
					continue
				}
				out = append(out, p+"."+k)
				walk(p+"."+k, e)
			}
		case []any:
			if len(x) > 0 {
				walk(p+"[]", x[0])
			}
		}
	}
	walk("", v)
	slices.Sort(out)
	return out
}

// withSchedule copies the template with schedule id's properties edited.
func withSchedule(t *testing.T, id string, edit func(p map[string]any)) *cfntemplate.Template {
	t.Helper()
	cp := *tpl
	cp.Resources = map[string]*cfntemplate.Resource{}
	for k, r := range tpl.Resources {
		cp.Resources[k] = r
	}
	r, ok := tpl.Resources[id]
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	b, _ := json.Marshal(r.Properties)
	nr := *r
	nr.Properties = nil
	if err := json.Unmarshal(b, &nr.Properties); err != nil {
		t.Fatal(err)
	}
	edit(nr.Properties)
	cp.Resources[id] = &nr
	return &cp
}

// TestSchedulerStopsAtMaximumEventAge: with retries to spare (185) but
// MaximumEventAgeInSeconds 60, a throttled target is retried only while
// the event is younger than a minute (back-offs 1+2+4+8+16 s; the next,
// 32 s, would pass 60 s): 6 attempts, then the DLQ.
func TestSchedulerStopsAtMaximumEventAge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := "Scheduletokensigning4D8E8F90"
	tp := withSchedule(t, id, func(p map[string]any) {
		p["Target"].(map[string]any)["RetryPolicy"] = map[string]any{"MaximumRetryAttempts": 185.0, "MaximumEventAgeInSeconds": 60.0}
	})
	d, _ := e.delivererAt(t, 100, 0, nil)
	s, err := triggers.NewScheduler(ctx, tp, triggers.Resolver(tp, account, region, nil), d, d.Clock().Now())
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := s.Schedule(id)
	e.throttleFor("keyferry-rotate", -1)
	ex, _ := s.FireNext(ctx, sc, false)
	if ex.Attempts != 6 || !ex.DeadLettered {
		t.Fatalf("%+v", ex)
	}
	m := receive(t, e, sc.DLQURL, 1)[0]
	if got := aws.ToString(m.MessageAttributes["RETRY_ATTEMPTS"].StringValue); got != "5" {
		t.Errorf("RETRY_ATTEMPTS %q, want 5", got)
	}
}

// TestBadTemplateInput: a schedule the Scheduler could not run is an error
// naming it, and nothing is fired.
func TestBadTemplateInput(t *testing.T) {
	e := newEnv(t)
	d, _ := e.deliverer(t, 0, nil)
	for name, edit := range map[string]func(p map[string]any){
		"expression": func(p map[string]any) { p["ScheduleExpression"] = "rate(5 weeks)" },
		"target": func(p map[string]any) {
			p["Target"].(map[string]any)["Arn"] = map[string]any{"Fn::GetAtt": []any{"NoSuchFn", "Arn"}}
		},
		"input": func(p map[string]any) { p["Target"].(map[string]any)["Input"] = map[string]any{"group": "x"} },
	} {
		tp := withSchedule(t, "ScheduleSweeper6A66DCCB", edit)
		_, err := triggers.NewScheduler(context.Background(), tp, triggers.Resolver(tp, account, region, nil), d, d.Clock().Now())
		if err == nil || !strings.Contains(err.Error(), "ScheduleSweeper6A66DCCB") {
			t.Errorf("%s: error %v, want one naming the schedule", name, err)
		}
	}
	if st := d.Stats(); st.Invokes != 0 {
		t.Errorf("%d invokes after bad templates", st.Invokes)
	}
}

// TestSchedulerRunFiresOnTheClock: Run fires rate(5 minutes) every five
// minutes of the accelerated clock (3000x: every 100 ms), each firing with
// the schedule's Input, and stops with its context.
func TestSchedulerRunFiresOnTheClock(t *testing.T) {
	e := newEnv(t)
	d, r := e.delivererAt(t, 3000, 0, nil)
	s, err := triggers.NewScheduler(context.Background(), tpl, r, d, d.Clock().Now())
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := s.Schedule("ScheduleSweeper6A66DCCB")
	s.Schedules = []*triggers.Schedule{sc}
	ctx, cancel := context.WithTimeout(context.Background(), 1050*time.Millisecond)
	defer cancel()
	var fired atomic.Int32
	s.Run(ctx, func(ex triggers.Execution) {
		if ex.Delivered == 1 {
			fired.Add(1)
		}
	})
	n := int(fired.Load())
	if n < 9 || n > 11 {
		t.Fatalf("%d firings in 52.5 clock minutes of rate(5 minutes), want 10 (±1)", n)
	}
	for _, c := range e.waitCalls(t, n) {
		if string(c.payload) != sc.Input {
			t.Fatalf("payload %q", c.payload)
		}
	}
}
