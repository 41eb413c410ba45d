//go:build cgo

package hsm

import (
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Error is a failed PKCS#11 call.
type Error struct {
	Op    string // e.g. "C_WrapKey"
	Code  uint   // CKR_* return value
	Token string // token label (or serial:...)
	// Mechanism names the mechanism involved, if any (e.g. "CKM_RSA_PKCS_OAEP").
	Mechanism string
	Err       error // the underlying pkcs11.Error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("hsm: pkcs#11 %s on token %q: %s (0x%X)", e.Op, e.Token, codeName(e.Code), e.Code)
	if e.Mechanism != "" {
		s += " with " + e.Mechanism
	}
	return s
}

// Unwrap returns the underlying pkcs11.Error.
func (e *Error) Unwrap() error { return e.Err }

// Is maps the return code onto the package sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrDeviceLost:
		switch e.Code {
		case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_DEVICE_REMOVED,
			pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
			return true
		}
	case ErrSessionClosed:
		return e.Code == pkcs11.CKR_SESSION_HANDLE_INVALID || e.Code == pkcs11.CKR_SESSION_CLOSED
	case ErrUnsupportedMechanism:
		switch e.Code {
		case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID,
			pkcs11.CKR_FUNCTION_NOT_SUPPORTED, pkcs11.CKR_KEY_NOT_WRAPPABLE,
			pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:
			return true
		}
	case ErrKeyNotFound:
		return e.Code == pkcs11.CKR_KEY_HANDLE_INVALID || e.Code == pkcs11.CKR_OBJECT_HANDLE_INVALID
	case ErrPIN:
		switch e.Code {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_EXPIRED:
			return true
		}
	case ErrSensitive:
		return e.Code == pkcs11.CKR_ATTRIBUTE_SENSITIVE
	}
	return false
}

// sessionLoss reports whether err means the sessions (or the whole module
// state) are gone, so the pool must re-initialise and retry once.
func sessionLoss(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_SESSION_HANDLE_INVALID,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_TOKEN_NOT_PRESENT,
		// NSS softoken answers C_OpenSession with it once the module was
		// finalised underneath (its slots are gone until C_Initialize).
		pkcs11.CKR_SLOT_ID_INVALID:
		return true
	}
	return false
}

// codeOf extracts the CKR_* code of a pkcs11 error (0 if none).
func codeOf(err error) uint {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return uint(pe)
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// codeName renders a CKR_* code via miekg's table ("pkcs11: 0x11: CKR_ATTRIBUTE_SENSITIVE").
func codeName(code uint) string {
	s := pkcs11.Error(code).Error()
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ' ' {
			if name := s[i+1:]; name != "" {
				return name
			}
			break
		}
	}
	return "CKR_UNKNOWN"
}

// mechName names a mechanism for errors and capability tables.
func mechName(m uint) string {
	switch m {
	case pkcs11.CKM_RSA_PKCS_OAEP:
		return "CKM_RSA_PKCS_OAEP"
	case pkcs11.CKM_RSA_AES_KEY_WRAP:
		return "CKM_RSA_AES_KEY_WRAP"
	case pkcs11.CKM_AES_KEY_WRAP_PAD:
		return "CKM_AES_KEY_WRAP_PAD"
	case CKM_AES_KEY_WRAP_KWP:
		return "CKM_AES_KEY_WRAP_KWP"
	case pkcs11.CKM_AES_KEY_GEN:
		return "CKM_AES_KEY_GEN"
	case pkcs11.CKM_GENERIC_SECRET_KEY_GEN:
		return "CKM_GENERIC_SECRET_KEY_GEN"
	case pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN:
		return "CKM_RSA_PKCS_KEY_PAIR_GEN"
	case pkcs11.CKM_EC_KEY_PAIR_GEN:
		return "CKM_EC_KEY_PAIR_GEN"
	case pkcs11.CKM_ECDSA:
		return "CKM_ECDSA"
	case pkcs11.CKM_SHA256_RSA_PKCS:
		return "CKM_SHA256_RSA_PKCS"
	case pkcs11.CKM_RSA_PKCS_PSS:
		return "CKM_RSA_PKCS_PSS"
	case pkcs11.CKM_SHA224_HMAC:
		return "CKM_SHA224_HMAC"
	case pkcs11.CKM_SHA256_HMAC:
		return "CKM_SHA256_HMAC"
	case pkcs11.CKM_SHA384_HMAC:
		return "CKM_SHA384_HMAC"
	case pkcs11.CKM_SHA512_HMAC:
		return "CKM_SHA512_HMAC"
	case pkcs11.CKM_AES_ECB:
		return "CKM_AES_ECB"
	}
	return fmt.Sprintf("CKM_0x%X", m)
}
