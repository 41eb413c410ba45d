// Package e2e holds the end-to-end suite of keyferry: every test drives the
// whole system as the sandbox runs it (SoftHSM2 token, moto_server, the KMS
// emulator, the API Gateway WebSocket emulator with the real Lambda
// handlers, and a keyferry-agent process) through the control plane's real
// entry points (Scheduler payloads, CloudWatch alarm events, operator
// requests, the keepalive/sweeper), and checks the outcome in the job
// store and in KMS through the AWS SDK and the AWS CLI. The package has no
// non-test code.
package e2e
