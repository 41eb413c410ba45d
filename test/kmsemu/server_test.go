package kmsemu

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func rawCall(t *testing.T, url, target, body string, auth bool) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if auth {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestWireProtocol checks the awsJson1_1 surface: auth header required (not
// verified), __type + message errors with HTTP 400, epoch-number timestamps.
func TestWireProtocol(t *testing.T) {
	srv := startServer(t, Options{})
	tests := []struct {
		name, target, body string
		auth               bool
		status             int
		typ                string
	}{
		{"no Authorization", "TrentService.ListKeys", "{}", false, 400, "MissingAuthenticationTokenException"},
		{"unknown operation", "TrentService.Frobnicate", "{}", true, 400, "UnknownOperationException"},
		{"missing target", "", "{}", true, 400, "UnknownOperationException"},
		{"bad JSON", "TrentService.CreateKey", "{", true, 400, "SerializationException"},
		{"any signature accepted", "TrentService.ListKeys", "{}", true, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, out := rawCall(t, srv.URL(), tc.target, tc.body, tc.auth)
			if st != tc.status {
				t.Fatalf("status %d, want %d (%v)", st, tc.status, out)
			}
			if tc.typ != "" && (out["__type"] != tc.typ || out["message"] == nil) {
				t.Fatalf("body %v, want __type %s and a message", out, tc.typ)
			}
		})
	}
	_, out := rawCall(t, srv.URL(), "TrentService.CreateKey", "{}", true)
	md := out["KeyMetadata"].(map[string]any)
	if _, ok := md["CreationDate"].(float64); !ok {
		t.Fatalf("CreationDate is %T, want a JSON number", md["CreationDate"])
	}
}

// TestEpochJSON: timestamps marshal as epoch seconds and unmarshal from
// whole, fractional, string-number and ISO 8601 forms.
func TestEpochJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{`1700000000`, time.Unix(1700000000, 0)},
		{`1700000000.5`, time.Unix(1700000000, 5e8)},
		{`"1700000000"`, time.Unix(1700000000, 0)},
		{`"2023-11-14T22:13:20Z"`, time.Unix(1700000000, 0)},
	}
	for _, tc := range tests {
		var e epoch
		if err := json.Unmarshal([]byte(tc.in), &e); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !time.Time(e).Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.in, time.Time(e), tc.want)
		}
	}
	var e epoch
	if err := json.Unmarshal([]byte(`"yesterday"`), &e); err == nil {
		t.Error("accepted a non-timestamp")
	}
	b, _ := json.Marshal(epoch(time.Unix(1700000000, 250e6)))
	if string(b) != "1700000000.25" {
		t.Errorf("marshal = %s", b)
	}
}

// TestAdminEndpoints: POST /_emu/clock advances the clock, GET /_emu/stats
// reports counts per operation.
func TestAdminEndpoints(t *testing.T) {
	srv := startServer(t, Options{})
	c := newClient(srv.URL())
	must[*kms.ListKeysOutput](t)(c.ListKeys(context.Background(), &kms.ListKeysInput{}))
	before := srv.Now()
	resp, err := http.Post(srv.URL()+"/_emu/clock", "application/json", bytes.NewReader([]byte(`{"advance_seconds": 86400}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || srv.Now().Sub(before) < 24*time.Hour {
		t.Fatalf("clock: status %d, moved %v", resp.StatusCode, srv.Now().Sub(before))
	}
	resp, _ = http.Post(srv.URL()+"/_emu/clock", "application/json", strings.NewReader(`{"advance_seconds": -5}`))
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("negative advance: status %d", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL() + "/_emu/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Requests["ListKeys"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestQuotaThrottles: at QuotaScale 1, CreateKey (5/s) answers
// ThrottlingException after its burst, and Stats counts it; other
// operations have their own buckets; QuotaScale 0 is unlimited.
func TestQuotaThrottles(t *testing.T) {
	srv := startServer(t, Options{QuotaScale: 1})
	frozen := time.Now()
	srv.limiter.now = func() time.Time { return frozen } // no refill: deterministic burst
	c := newClient(srv.URL())
	ctx := context.Background()
	throttled := 0
	for i := 0; i < 20; i++ {
		if _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); errCode(err) == errThrottling {
			throttled++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if throttled != 15 {
		t.Fatalf("%d of 20 CreateKey calls throttled, want 15 (burst 5 at 5/s, clock frozen)", throttled)
	}
	st := srv.Stats()
	if st.Throttled["CreateKey"] != throttled || st.Requests["CreateKey"] != 20 || st.Errors["CreateKey"] != throttled {
		t.Fatalf("stats %+v, throttled %d", st, throttled)
	}
	must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{}))

	free := startServer(t, Options{QuotaScale: 0})
	fc := newClient(free.URL())
	for i := 0; i < 30; i++ {
		must[*kms.CreateKeyOutput](t)(fc.CreateKey(ctx, &kms.CreateKeyInput{}))
	}
}

// TestLimiterRefill: the token bucket refills at rate x scale on its clock.
func TestLimiterRefill(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(2, func() time.Time { return now })
	got := 0
	for l.allow("GetParametersForImport") { // 1/s x 2 = burst 2
		got++
	}
	if got != 2 {
		t.Fatalf("burst %d, want 2", got)
	}
	now = now.Add(500 * time.Millisecond)
	if !l.allow("GetParametersForImport") || l.allow("GetParametersForImport") {
		t.Fatal("want exactly one token after 0.5 s at 2/s")
	}
	if !l.allow("Frobnicate") {
		t.Fatal("unknown operations are not limited")
	}
}

// TestFaultInjection: injected error (state unchanged), and apply-then-drop
// (state changed, caller sees a broken connection).
func TestFaultInjection(t *testing.T) {
	var mode atomic.Value
	mode.Store("")
	srv := startServer(t, Options{Fault: func(op string, req []byte) *FaultAction {
		if op != "CreateKey" {
			return nil
		}
		switch mode.Load().(string) {
		case "error":
			return &FaultAction{ErrorType: "KMSInternalException", Message: "injected"}
		case "drop":
			return &FaultAction{DropResponse: true}
		}
		return nil
	}})
	c := newClient(srv.URL())
	ctx := context.Background()
	count := func() int {
		return len(must[*kms.ListKeysOutput](t)(c.ListKeys(ctx, &kms.ListKeysInput{})).Keys)
	}
	mode.Store("error")
	_, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	wantCode(t, err, "KMSInternalException")
	if n := count(); n != 0 {
		t.Fatalf("injected error created %d keys", n)
	}
	mode.Store("drop")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err == nil || strings.HasPrefix(errCode(err), "KMS") {
		t.Fatalf("dropped response gave %v", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("apply-then-drop created %d keys, want 1", n)
	}
	if st := srv.Stats(); st.Faults["CreateKey"] != 2 {
		t.Fatalf("faults %v", st.Faults)
	}
}

// TestClockAdvance: Advance only moves forward.
func TestClockAdvance(t *testing.T) {
	base := time.Unix(1000, 0)
	c := NewClock(func() time.Time { return base })
	c.Advance(time.Hour)
	c.Advance(-2 * time.Hour)
	if got := c.Now(); !got.Equal(base.Add(time.Hour)) {
		t.Fatalf("now %v", got)
	}
}
