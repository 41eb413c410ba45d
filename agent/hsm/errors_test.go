//go:build cgo

package hsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		code     uint
		sentinel error
		loss     bool
	}{
		{pkcs11.CKR_DEVICE_ERROR, ErrDeviceLost, true},
		{pkcs11.CKR_GENERAL_ERROR, ErrDeviceLost, true},
		{pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, ErrDeviceLost, true},
		{pkcs11.CKR_SESSION_HANDLE_INVALID, ErrSessionClosed, true},
		{pkcs11.CKR_MECHANISM_INVALID, ErrUnsupportedMechanism, false},
		{pkcs11.CKR_KEY_NOT_WRAPPABLE, ErrUnsupportedMechanism, false},
		{pkcs11.CKR_OBJECT_HANDLE_INVALID, ErrKeyNotFound, false},
		{pkcs11.CKR_PIN_INCORRECT, ErrPIN, false},
		{pkcs11.CKR_ATTRIBUTE_SENSITIVE, ErrSensitive, false},
	} {
		h := &HSM{token: "tok"}
		err := fmt.Errorf("outer: %w", h.wrapErr("C_X", "CKM_Y", pkcs11.Error(tc.code)))
		if !errors.Is(err, tc.sentinel) {
			t.Errorf("0x%X: not %v", tc.code, tc.sentinel)
		}
		if sessionLoss(err) != tc.loss {
			t.Errorf("0x%X: sessionLoss = %v", tc.code, !tc.loss)
		}
		var pe pkcs11.Error
		if !errors.As(err, &pe) || uint(pe) != tc.code {
			t.Errorf("0x%X: underlying pkcs11.Error lost", tc.code)
		}
		if s := err.Error(); !strings.Contains(s, `"tok"`) || !strings.Contains(s, "CKM_Y") || !strings.Contains(s, "CKR_") {
			t.Errorf("message %q does not name token, mechanism and code", s)
		}
	}
	if errors.Is(&Error{Code: pkcs11.CKR_ATTRIBUTE_SENSITIVE}, ErrDeviceLost) {
		t.Error("CKR_ATTRIBUTE_SENSITIVE classified as device loss")
	}
}
