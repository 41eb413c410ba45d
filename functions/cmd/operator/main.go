// Command operator is the keyferry Lambda for operator requests from the keyferry CLI (force rotate, sync, kill switch, restore).
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("operator", func(d *handlers.Deps) any { return d.Operator }) }
