// Command worker is the keyferry Lambda that runs rotation jobs handed on
// through the job queue (SQS event source mapping, functions/jobqueue).
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("worker", func(d *handlers.Deps) any { return d.Work }) }
