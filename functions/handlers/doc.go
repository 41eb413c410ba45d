// Package handlers holds the control plane's Lambda handlers as plain Go
// methods on Deps, so the API Gateway emulator, the sandbox and tests call
// exactly what the Lambda mains (functions/cmd/*) hand to lambda.Start:
//
//   - Connect ($connect): records the agent's connection; refuses (403)
//     agent identities not registered in the named HSM pool. The agent names
//     itself with the X-Keyferry-Agent-Id and X-Keyferry-Pool headers (or
//     the agent_id / hsm_pool query parameters); it proves the identity with
//     its signed hello before it gets any wrap_request.
//   - Disconnect ($disconnect): forgets the connection.
//   - AgentMessage (routes hello, wrap_result, error, heartbeat, $default).
//   - Rotate: EventBridge Scheduler payload {"group","trigger":"schedule"},
//     the CloudWatch alarm payload (direct Lambda action), the EventBridge
//     "CloudWatch Alarm State Change" event, and operator requests.
//   - Keepalive: re-imports before expiry, then the sweeper.
//   - Operator: force rotate, sync (policy / import / delete material),
//     kill switch, restore.
package handlers
