package handlers

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Start is the whole main of a keyferry Lambda: it builds Deps from the
// environment (exiting on a configuration error) and serves the handler
// that pick selects.
func Start(name string, pick func(*Deps) any) {
	d, err := FromEnv(context.Background())
	if err != nil {
		slog.Error(name+": configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(pick(d))
}
