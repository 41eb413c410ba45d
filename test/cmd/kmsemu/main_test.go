package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRunServesUntilCanceled starts the binary's run() on a free port,
// calls it over HTTP, and stops it by canceling the context.
func TestRunServesUntilCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", addr, "--region", "ap-south-1", "--quota-scale", "0"}) }()
	var resp *http.Response
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr, strings.NewReader(`{}`))
		req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
		req.Header.Set("Authorization", "x")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "arn:aws:kms:ap-south-1:") {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunRejectsBadFlags: invalid flag values are errors.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--quota-scale", "-1"}, {"--rotation-cap", "0"}, {"--nope"}} {
		if err := run(context.Background(), args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
