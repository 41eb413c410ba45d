// Command agent-message is the keyferry Lambda for the agent message routes (hello, wrap_result, error, heartbeat, $default).
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("agent-message", func(d *handlers.Deps) any { return d.AgentMessage }) }
