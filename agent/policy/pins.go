package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/keyferry/keyferry/shared/protocol"
)

// PinStore persists HSM label -> KMS key ARN pins in a small JSON file so
// that key pinning survives restarts. Writes are atomic (temp file, fsync,
// rename).
type PinStore struct {
	mu   sync.Mutex
	path string
	pins map[string]string
}

type pinFile struct {
	Pins map[string]string `json:"pins"`
}

// OpenPins loads (or starts) the pin file at path.
func OpenPins(path string) (*PinStore, error) {
	s := &PinStore{path: path, pins: map[string]string{}}
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("policy: read pins: %w", err)
	}
	var f pinFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("policy: pins file %s is corrupt (refusing to start without pins): %w", path, err)
	}
	if f.Pins != nil {
		s.pins = f.Pins
	}
	return s, nil
}

// Lookup returns the ARN a label is pinned to.
func (s *PinStore) Lookup(label string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arn, ok := s.pins[label]
	return arn, ok
}

// Check refuses if label is pinned to a key other than arn's (the same
// multi-Region key in another Region is the same key: protocol.SameKey).
func (s *PinStore) Check(label, arn string) error {
	if got, ok := s.Lookup(label); ok && !protocol.SameKey(got, arn) {
		return refuse(ReasonKeyPinned, protocol.CodePolicyRefused, nil, "HSM key %q is pinned to %s; refusing to wrap it for %s", label, got, arn)
	}
	return nil
}

// Claim pins label to arn (persisting it) unless it is pinned to another
// ARN, in which case it returns a *Refusal. It reports whether the pin is new.
func (s *PinStore) Claim(label, arn string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if got, ok := s.pins[label]; ok {
		// The pin binds the HSM key to one KMS key; a multi-Region key is
		// one key in several Regions (protocol.SameKey), never two keys.
		if !protocol.SameKey(got, arn) {
			return false, refuse(ReasonKeyPinned, protocol.CodePolicyRefused, nil, "HSM key %q is pinned to %s; refusing to wrap it for %s", label, got, arn)
		}
		return false, nil
	}
	s.pins[label] = arn
	if err := s.saveLocked(); err != nil {
		delete(s.pins, label)
		return false, err
	}
	return true, nil
}

func (s *PinStore) saveLocked() error {
	b, err := json.MarshalIndent(pinFile{Pins: s.pins}, "", "  ")
	if err != nil {
		return fmt.Errorf("policy: encode pins: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".pins-*")
	if err != nil {
		return fmt.Errorf("policy: save pins: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("policy: save pins: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("policy: save pins: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("policy: save pins: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("policy: save pins: %w", err)
	}
	return nil
}
