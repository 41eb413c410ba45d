//go:build cgo

package hsm

import (
	"encoding/binary"
	"fmt"

	"github.com/miekg/pkcs11"
)

// findObjects returns up to max handles matching template.
func (s session) findObjects(template []*pkcs11.Attribute, max int) ([]pkcs11.ObjectHandle, error) {
	if err := s.p.FindObjectsInit(s.h, template); err != nil {
		return nil, s.wrapErr("C_FindObjectsInit", err)
	}
	var out []pkcs11.ObjectHandle
	for len(out) < max {
		objs, _, err := s.p.FindObjects(s.h, min(64, max-len(out)))
		if err != nil {
			_ = s.p.FindObjectsFinal(s.h)
			return nil, s.wrapErr("C_FindObjects", err)
		}
		if len(objs) == 0 {
			break
		}
		out = append(out, objs...)
	}
	if err := s.p.FindObjectsFinal(s.h); err != nil {
		return nil, s.wrapErr("C_FindObjectsFinal", err)
	}
	return out, nil
}

// findByLabel finds the token object of class with label (0 if none).
func (s session) findByLabel(label string, class uint) (pkcs11.ObjectHandle, bool, error) {
	objs, err := s.findObjects([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}, 2)
	if err != nil {
		return 0, false, err
	}
	switch len(objs) {
	case 0:
		return 0, false, nil
	case 1:
		return objs[0], true, nil
	}
	return 0, false, fmt.Errorf("hsm: token %q holds more than one object of class %d labelled %q", s.token, class, label)
}

// findKey finds the secret or private key labelled label.
func (s session) findKey(label string) (pkcs11.ObjectHandle, uint, error) {
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY} {
		o, ok, err := s.findByLabel(label, class)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			return o, class, nil
		}
	}
	return 0, 0, &KeyNotFoundError{Label: label, Token: s.token}
}

// attrs reads non-secret attributes of an object. Callers never ask for
// the value attribute of a key; see TestNoCodePathReadsCKAValue.
func (s session) attrs(o pkcs11.ObjectHandle, types ...uint) (map[uint][]byte, error) {
	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	got, err := s.p.GetAttributeValue(s.h, o, tmpl)
	if err != nil {
		return nil, s.wrapErr("C_GetAttributeValue", err)
	}
	out := make(map[uint][]byte, len(got))
	for _, a := range got {
		out[a.Type] = a.Value
	}
	return out, nil
}

// ulong decodes a CK_ULONG attribute (native byte order).
func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	case 1:
		return uint(b[0])
	}
	return 0
}
