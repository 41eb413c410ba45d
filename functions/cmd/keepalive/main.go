// Command keepalive is the keyferry Lambda for the keepalive (re-import before expiry) and sweeper schedule.
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("keepalive", func(d *handlers.Deps) any { return d.Keepalive }) }
