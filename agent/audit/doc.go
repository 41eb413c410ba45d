// Package audit is the agent's local, append-only audit log: one JSON object
// per line, each record hash-chained to the previous one (and optionally
// signed by the agent identity key), recording every request, policy
// decision and result. It never records key material: records carry
// identifiers, decisions and reasons only.
//
// Chain rule: record n has seq n (starting at 1), prev = hash of record n-1
// (64 zero hex digits for record 1) and hash = hex SHA-256 of the record's
// canonical JSON without its hash and sig fields. Verify walks a log and
// names the first record (line and seq) that breaks the chain, so an edit,
// a deletion, a reordering or a cut in the middle of the file is detected.
// Cutting records off the END of the file cannot be detected from the file
// alone; Verify reports the last seq and hash so an operator (or a remote
// copy of the last hash, e.g. the hello message) can anchor it.
package audit
