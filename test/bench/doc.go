// Package bench measures keyferry against its three ceilings (the HSM's own
// keygen+wrap rate, KMS's import quota, the latency of the KMS calls) and
// against the AWS CLI + openssl walkthrough users run today. It holds the
// measurement steps that test/cmd/bench (`make bench`) drives and the Go
// benchmarks of the same paths. Nothing here is a pass/fail timing test:
// tests check that each measurement measures (results verified, counts
// right), never how fast it was.
package bench
