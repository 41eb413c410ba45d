package audit

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// ErrChainBroken is wrapped by every *VerifyError that is not a malformed line.
var ErrChainBroken = errors.New("audit: hash chain broken")

// VerifyError names the first record that fails verification.
type VerifyError struct {
	Line   int    // 1-based line number in the file
	Seq    uint64 // seq of the record on that line, 0 if it did not decode
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	if e.Seq != 0 {
		return fmt.Sprintf("audit: record seq %d (line %d): %s", e.Seq, e.Line, e.Reason)
	}
	return fmt.Sprintf("audit: line %d: %s", e.Line, e.Reason)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Result summarises a verified log.
type Result struct {
	Records  int
	LastSeq  uint64
	LastHash string
	Signed   int // records whose signature verified
}

// Verify checks every line of r: strict decoding, consecutive seq numbers
// from 1, prev equal to the previous record's hash, and the hash of each
// record. With pub non-nil every record must carry a valid signature of its
// hash by that key. The error is a *VerifyError naming the record.
func Verify(r io.Reader, pub *ecdsa.PublicKey) (Result, error) {
	res := Result{LastHash: GenesisHash}
	err := readLines(r, func(n int, line []byte) error {
		rec, err := DecodeLine(line)
		if err != nil {
			return &VerifyError{Line: n, Reason: err.Error(), Err: err}
		}
		fail := func(reason string) error {
			return &VerifyError{Line: n, Seq: rec.Seq, Reason: reason, Err: ErrChainBroken}
		}
		want := res.LastSeq + 1
		switch {
		case rec.Seq < want:
			return fail(fmt.Sprintf("seq %d out of order, expected %d (records reordered or duplicated)", rec.Seq, want))
		case rec.Seq > want:
			return fail(fmt.Sprintf("seq jumps from %d to %d (records %d..%d deleted)", res.LastSeq, rec.Seq, want, rec.Seq-1))
		}
		if rec.Prev != res.LastHash {
			return fail("prev does not match the hash of the previous record (record deleted, inserted or reordered)")
		}
		h, err := rec.ComputeHash()
		if err != nil {
			return fail(err.Error())
		}
		if h != rec.Hash {
			return fail("hash does not match the record content (record edited)")
		}
		if pub != nil {
			d, _ := hex.DecodeString(rec.Hash)
			if len(rec.Sig) == 0 || !ecdsa.VerifyASN1(pub, d, rec.Sig) {
				return fail("signature missing or invalid for the agent identity key")
			}
			res.Signed++
		}
		res.Records++
		res.LastSeq, res.LastHash = rec.Seq, rec.Hash
		return nil
	})
	return res, err
}
