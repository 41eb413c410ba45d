package protocol

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// ecdsaSig is the ASN.1 Ecdsa-Sig-Value (RFC 3279 section 2.2.3).
type ecdsaSig struct {
	R, S *big.Int
}

// RawToDER converts a raw ECDSA signature r||s (both halves the same length,
// as PKCS#11 CKM_ECDSA returns it) into the ASN.1 DER Ecdsa-Sig-Value that
// AWS KMS Sign returns and that this protocol carries.
func RawToDER(raw []byte) ([]byte, error) {
	if len(raw) == 0 || len(raw)%2 != 0 {
		return nil, fmt.Errorf("protocol: raw ECDSA signature is %d bytes, want an even non-zero length (r||s)", len(raw))
	}
	n := len(raw) / 2
	r := new(big.Int).SetBytes(raw[:n])
	s := new(big.Int).SetBytes(raw[n:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("protocol: raw ECDSA signature has a zero r or s")
	}
	der, err := asn1.Marshal(ecdsaSig{R: r, S: s})
	if err != nil {
		return nil, fmt.Errorf("protocol: encode ECDSA signature: %w", err)
	}
	return der, nil
}

// DERToRaw converts an ASN.1 DER Ecdsa-Sig-Value into r||s with each half
// left-padded to size bytes (32 for P-256, 48 for P-384, 66 for P-521). It
// rejects trailing data, non-minimal integers, and non-positive or oversized
// r or s.
func DERToRaw(der []byte, size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("protocol: DERToRaw size %d must be positive", size)
	}
	var sig ecdsaSig
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, fmt.Errorf("protocol: decode DER ECDSA signature: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("protocol: DER ECDSA signature has %d trailing bytes", len(rest))
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, errors.New("protocol: DER ECDSA signature has a non-positive r or s")
	}
	if (sig.R.BitLen()+7)/8 > size || (sig.S.BitLen()+7)/8 > size {
		return nil, fmt.Errorf("protocol: DER ECDSA signature r or s longer than %d bytes", size)
	}
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
