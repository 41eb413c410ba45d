// Command disconnect is the keyferry Lambda for the API Gateway $disconnect route.
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyferry/keyferry/functions/handlers"
)

func main() {
	d, err := handlers.FromEnv(context.Background())
	if err != nil {
		slog.Error("disconnect: configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(d.Disconnect)
}
