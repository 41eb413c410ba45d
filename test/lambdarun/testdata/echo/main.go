// Command echo is a test function for lambdarun: it answers its pid and an
// environment variable, sleeps when asked, and fails when asked.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type req struct {
	SleepMS int    `json:"sleep_ms"`
	Fail    string `json:"fail"`
	Env     string `json:"env"`
}

type resp struct {
	PID int    `json:"pid"`
	Env string `json:"env"`
}

func main() {
	lambda.Start(func(ctx context.Context, r req) (resp, error) {
		time.Sleep(time.Duration(r.SleepMS) * time.Millisecond)
		if r.Fail != "" {
			return resp{}, errors.New(r.Fail)
		}
		return resp{PID: os.Getpid(), Env: os.Getenv(r.Env)}, nil
	})
}
