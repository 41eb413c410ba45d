// Command rotate is the keyferry Lambda for rotation triggers: EventBridge Scheduler, CloudWatch alarms (direct and via EventBridge), operator requests.
// Built as bootstrap (GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc).
package main

import "github.com/keyferry/keyferry/functions/handlers"

func main() { handlers.Start("rotate", func(d *handlers.Deps) any { return d.Rotate }) }
