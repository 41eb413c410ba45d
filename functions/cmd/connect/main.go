// Command connect is the keyferry Lambda for the API Gateway $connect route: records an agent connection, refuses unregistered identities.
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("connect", func(d *handlers.Deps) any { return d.Connect }) }
