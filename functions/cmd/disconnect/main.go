// Command disconnect is the keyferry Lambda for the API Gateway $disconnect route.
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("disconnect", func(d *handlers.Deps) any { return d.Disconnect }) }
