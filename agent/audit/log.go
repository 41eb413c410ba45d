package audit

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Signer signs a SHA-256 digest and returns an ASN.1 DER signature (the agent
// identity key; matches protocol.Signer).
type Signer interface {
	SignDigest(ctx context.Context, digest []byte) ([]byte, error)
}

// Log appends records to one file. It is safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	f      *os.File
	signer Signer
	seq    uint64
	last   string
	now    func() time.Time
}

// Open opens (creating if needed, mode 0600) the log at path, verifies the
// existing chain and continues it. A broken chain is an error: the agent
// must not extend a log that has been tampered with. signer may be nil.
func Open(path string, signer Signer) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	res, err := Verify(f, nil)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: existing log %s: %w", path, err)
	}
	return &Log{f: f, signer: signer, seq: res.LastSeq, last: res.LastHash, now: time.Now}, nil
}

// Append completes r (seq, time, prev, hash, sig), writes it as one line and
// syncs the file. It returns the completed record.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return Record{}, errors.New("audit: log is closed")
	}
	r.Seq = l.seq + 1
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	r.Prev = l.last
	h, err := r.ComputeHash()
	if err != nil {
		return Record{}, err
	}
	r.Hash, r.Sig = h, nil
	if l.signer != nil {
		d, _ := hex.DecodeString(h)
		sig, err := l.signer.SignDigest(ctx, d)
		if err != nil {
			return Record{}, fmt.Errorf("audit: sign record %d: %w", r.Seq, err)
		}
		r.Sig = sig
	}
	line, err := json.Marshal(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	line = append(line, '\n')
	if _, err := l.f.Write(line); err != nil {
		return Record{}, fmt.Errorf("audit: write record %d: %w", r.Seq, err)
	}
	if err := l.f.Sync(); err != nil {
		return Record{}, fmt.Errorf("audit: sync record %d: %w", r.Seq, err)
	}
	l.seq, l.last = r.Seq, h
	return r, nil
}

// Head returns the last seq and hash (an anchor against tail truncation).
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.last
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// readLines yields each line (without the newline) with its 1-based number.
func readLines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	n := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return &VerifyError{Line: n + 1, Reason: fmt.Sprintf("line longer than %d bytes", MaxLineBytes), Err: ErrMalformedLine}
		}
		if len(line) > 0 {
			n++
			complete := line[len(line)-1] == '\n'
			if complete {
				line = line[:len(line)-1]
			}
			if !complete {
				// A final line without newline: a torn write or a cut.
				if _, derr := DecodeLine(line); derr != nil {
					return &VerifyError{Line: n, Reason: "incomplete last line (torn write or truncation)", Err: derr}
				}
			}
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read: %w", err)
		}
	}
}
