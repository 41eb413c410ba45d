// Package engine is keyferry's rotation engine: a resumable state machine
// over the job record in the store, driven by whichever Lambda receives the
// next event (rotate, agent-message, keepalive/sweeper).
//
// A rotation job goes PENDING -> KEY_READY (target KMS key created or
// reused) -> PARAMS (GetParametersForImport) -> REQUESTED (signed
// wrap_request posted to a live agent of the group's HSM pool) -> RESULT
// (wrap_result with a valid registered-agent signature) -> IMPORTED
// (ImportKeyMaterial with explicit ExpirationModel/ValidTo) [-> ROTATING
// (in-place: RotateKeyOnDemand until CurrentKeyMaterialId changes)] ->
// VERIFIED (post-import verification) -> SWITCHED (alias moved, generation
// recorded) -> SUCCEEDED. Any step may fail the job with a reason. Every
// transition is a conditional write, so two Lambdas racing on one job cannot
// both advance it, and a crash between two steps resumes at the recorded
// state. The alias only moves after import and verification succeeded.
//
// The states, the transitions each may take and the step of each are one
// table (machine.go); a transition it does not list is refused before any
// write (TransitionError).
//
// The Engine runs the rotation; the agents' connections (agentBroker), the
// groups' CloudWatch alarms (alarmReconciler) and maintenance (maintainer:
// keepalive, the sweeper, the kill switch) are concerns of their own, each
// holding only the narrow interfaces it uses (concerns.go).
//
// Re-import jobs (keepalive before ValidTo, restore after the kill switch)
// use the same machine with operation "rewrap" of the existing HSM key and
// ImportType EXISTING_KEY_MATERIAL.
package engine
