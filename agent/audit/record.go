package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// GenesisHash is the prev value of the first record of a log.
var GenesisHash = strings.Repeat("0", 64)

// MaxLineBytes bounds one audit line (records are small; anything bigger is
// not a record this package wrote).
const MaxLineBytes = 64 * 1024

// Event names what a record is about.
type Event string

// Events.
const (
	EventStart    Event = "agent_start"
	EventStop     Event = "agent_stop"
	EventRequest  Event = "request"   // a wrap request arrived and was decided
	EventResult   Event = "result"    // a wrap finished (succeeded or failed)
	EventRefusal  Event = "refusal"   // a message was refused before any HSM call
	EventConnect  Event = "connect"   // tunnel connection opened
	EventPinAdded Event = "pin_added" // key pinning recorded label -> ARN
)

// Record is one audit line. Only identifiers and decisions: never key
// material, wrapped blobs, PINs or wrapping keys.
type Record struct {
	Seq       uint64            `json:"seq"`
	Time      time.Time         `json:"time"`
	Prev      string            `json:"prev"`
	Event     Event             `json:"event"`
	Decision  string            `json:"decision,omitempty"` // accepted, refused, succeeded, failed
	Reason    string            `json:"reason,omitempty"`   // refusal reason / error code
	Message   string            `json:"message,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	JobID     string            `json:"job_id,omitempty"`
	Account   string            `json:"account,omitempty"`
	Region    string            `json:"region,omitempty"`
	Group     string            `json:"group,omitempty"`
	KeyARN    string            `json:"key_arn,omitempty"`
	KeySpec   string            `json:"key_spec,omitempty"`
	HSMLabel  string            `json:"hsm_label,omitempty"`
	Algorithm string            `json:"algorithm,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
	Hash      string            `json:"hash"`
	Sig       []byte            `json:"sig,omitempty"`
}

// canonical returns the bytes the hash covers: the record's JSON with hash
// and sig removed. encoding/json writes struct fields in declaration order
// and map keys sorted, so the encoding is deterministic.
func (r Record) canonical() ([]byte, error) {
	r.Hash, r.Sig = "", nil
	r.Time = r.Time.UTC()
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record: %w", err)
	}
	return b, nil
}

// ComputeHash returns the hex SHA-256 chain hash of r.
func (r Record) ComputeHash() (string, error) {
	b, err := r.canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ErrMalformedLine is wrapped by DecodeLine for anything that is not a
// well-formed record line.
var ErrMalformedLine = errors.New("audit: malformed record line")

// DecodeLine strictly decodes one audit line (unknown fields, trailing data,
// missing chain fields and oversize lines are refused). It does not check
// the chain; Verify does.
func DecodeLine(line []byte) (*Record, error) {
	if len(line) > MaxLineBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformedLine, len(line), MaxLineBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedLine, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformedLine)
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformedLine)
	}
	switch {
	case r.Seq == 0:
		return nil, fmt.Errorf("%w: missing seq", ErrMalformedLine)
	case r.Time.IsZero():
		return nil, fmt.Errorf("%w: missing time", ErrMalformedLine)
	case r.Event == "":
		return nil, fmt.Errorf("%w: missing event", ErrMalformedLine)
	case !isHex64(r.Prev):
		return nil, fmt.Errorf("%w: prev is not 64 lowercase hex digits", ErrMalformedLine)
	case !isHex64(r.Hash):
		return nil, fmt.Errorf("%w: hash is not 64 lowercase hex digits", ErrMalformedLine)
	}
	return &r, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
