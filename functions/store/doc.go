// Package store keeps the control plane's state in DynamoDB (on-demand
// tables). Every state change is a conditional write.
//
// Tables (names come from the environment; TableSchemas describes them for
// infra/ and the sandbox):
//
//   - jobs: partition key job_id (S). Attributes: group, state, deadline
//     (N, unix seconds), version (N, optimistic lock), doc (S, the JSON
//     Job including its state history). GSI "by_state": state (S) +
//     deadline (N), used by the sweeper. A wrap_result names its job_id.
//   - generations: partition key group (S), sort key generation (N).
//     Attributes: state, doc (JSON Generation: KMS key ARN, KeyMaterialId,
//     HSM label, created/rotated/expires times).
//   - connections: partition key connection_id (S). Attributes: hsm_pool,
//     agent_id, doc (JSON Connection). GSI "by_pool": hsm_pool (S) +
//     connection_id (S).
//   - triggers: partition key trigger_id (S) -> job_id; written in the same
//     transaction as the job it started, so a trigger delivered twice
//     starts one job. Attribute expires_at (N) is the TTL attribute.
//   - groups: partition key group (S): the per-group head: active_job (the
//     one-rotation-per-group lock), last_alarm_at (N, alarm cooldown),
//     killed (BOOL).
package store
