package hsm

import (
	"errors"
	"fmt"
)

// This file compiles without cgo: the sentinels and the typed errors that
// carry no PKCS#11 types are what the agent's daemon branches on. *Error,
// the failed PKCS#11 call, lives with the module in pkcs11error.go (cgo).

// Sentinels for errors.Is. A *Error maps its PKCS#11 return code onto them.
var (
	// ErrDeviceLost: the module or device failed (CKR_DEVICE_ERROR,
	// CKR_GENERAL_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
	// CKR_CRYPTOKI_NOT_INITIALIZED). The pool re-initialises on these.
	ErrDeviceLost = errors.New("hsm: device lost")
	// ErrSessionClosed: the session handle is no longer valid.
	ErrSessionClosed = errors.New("hsm: session closed")
	// ErrUnsupportedMechanism: the token lacks a mechanism or parameter set.
	ErrUnsupportedMechanism = errors.New("hsm: unsupported mechanism")
	// ErrKeyNotFound: no key with the requested label.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrKeyExists: a key with the label already exists.
	ErrKeyExists = errors.New("hsm: key already exists")
	// ErrPIN: the PIN is wrong, locked or out of range.
	ErrPIN = errors.New("hsm: PIN rejected")
	// ErrSensitive: the token refused to reveal a sensitive attribute.
	ErrSensitive = errors.New("hsm: attribute is sensitive")
	// ErrTokenNotFound: no slot holds the configured token.
	ErrTokenNotFound = errors.New("hsm: token not found")
	// ErrAmbiguousToken: the configured label or serial names more than one token.
	ErrAmbiguousToken = errors.New("hsm: token selection is ambiguous")
	// ErrConfirmMismatch: Destroy's confirmation label differs.
	ErrConfirmMismatch = errors.New("hsm: destroy confirmation does not match the label")
	// ErrClosed: the HSM was closed.
	ErrClosed = errors.New("hsm: closed")
)

// UnsupportedError says that the token cannot do something the request needs.
type UnsupportedError struct {
	Token     string
	Spec      string // key spec, if any
	Algorithm string // wrapping algorithm, if any
	Mechanism string // the PKCS#11 mechanism that is missing or failed
	Reason    string
}

func (e *UnsupportedError) Error() string {
	s := fmt.Sprintf("hsm: token %q does not support %s", e.Token, e.Mechanism)
	if e.Spec != "" {
		s += " for " + e.Spec
	}
	if e.Algorithm != "" {
		s += " with " + e.Algorithm
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes errors.Is(err, ErrUnsupportedMechanism) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupportedMechanism }

// KeyExistsError refuses to generate over an existing label.
type KeyExistsError struct {
	Label string
	Token string
}

func (e *KeyExistsError) Error() string {
	return fmt.Sprintf("hsm: token %q already holds a key labelled %q", e.Token, e.Label)
}

// Is makes errors.Is(err, ErrKeyExists) true.
func (e *KeyExistsError) Is(target error) bool { return target == ErrKeyExists }

// KeyNotFoundError names the missing label.
type KeyNotFoundError struct {
	Label string
	Token string
}

func (e *KeyNotFoundError) Error() string {
	return fmt.Sprintf("hsm: token %q holds no key labelled %q", e.Token, e.Label)
}

// Is makes errors.Is(err, ErrKeyNotFound) true.
func (e *KeyNotFoundError) Is(target error) bool { return target == ErrKeyNotFound }
