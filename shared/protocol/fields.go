package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyferry/keyferry/shared/keyspec"
	"github.com/keyferry/keyferry/shared/secp256k1"
)

// MaxTextBytes bounds identifier-like string fields (ids, labels, pool names).
const MaxTextBytes = 256

var (
	keyARNRe = regexp.MustCompile(`^arn:(aws[a-z-]*):kms:([a-z0-9-]+):([0-9]{12}):key/([A-Za-z0-9-]{1,128})$`)
)

// checkText requires a non-empty, bounded, printable UTF-8 string.
func checkText(field, s string) error {
	if s == "" {
		return missing(field)
	}
	if len(s) > MaxTextBytes {
		return invalid(field, fmt.Sprintf("%d bytes, limit %d", len(s), MaxTextBytes))
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return invalid(field, fmt.Sprintf("contains the non-printable character %U", r))
		}
	}
	if strings.TrimSpace(s) != s {
		return invalid(field, "has leading or trailing spaces")
	}
	return nil
}

// checkTime requires a non-zero UTC time.
func checkTime(field string, t time.Time) error {
	if t.IsZero() {
		return missing(field)
	}
	if _, off := t.Zone(); off != 0 {
		return invalid(field, "must be RFC 3339 UTC (suffix Z)")
	}
	return nil
}

// keyARN is a parsed KMS key ARN.
type keyARN struct {
	Partition, Region, Account, KeyID string
}

func parseKeyARN(field, s string) (keyARN, error) {
	if s == "" {
		return keyARN{}, missing(field)
	}
	m := keyARNRe.FindStringSubmatch(s)
	if m == nil {
		return keyARN{}, invalid(field, "want arn:<partition>:kms:<region>:<12-digit account>:key/<key id>")
	}
	return keyARN{Partition: m[1], Region: m[2], Account: m[3], KeyID: m[4]}, nil
}

func checkSpec(field string, s keyspec.Spec) (keyspec.Info, error) {
	if s == "" {
		return keyspec.Info{}, missing(field)
	}
	info, err := keyspec.Lookup(s)
	if err != nil {
		return keyspec.Info{}, invalidErr(field, "unknown key spec", err)
	}
	return info, nil
}

func checkAlgorithm(field string, a keyspec.WrappingAlgorithm) error {
	if a == "" {
		return missing(field)
	}
	if a == keyspec.RSAESPKCS1V15Rejected {
		return invalid(field, "RSAES_PKCS1_V1_5 is no longer accepted by KMS")
	}
	if !a.Valid() {
		return invalid(field, fmt.Sprintf("unknown wrapping algorithm %q", string(a)))
	}
	return nil
}

func checkWrappingKeySpec(field string, w keyspec.WrappingKeySpec) error {
	if w == "" {
		return missing(field)
	}
	if w.Bits() == 0 {
		return invalid(field, fmt.Sprintf("unknown wrapping key spec %q (want RSA_2048, RSA_3072 or RSA_4096)", string(w)))
	}
	return nil
}

// checkHexID requires lowercase hex of whole bytes (a CKA_ID).
func checkHexID(field, s string) error {
	if s == "" {
		return missing(field)
	}
	if len(s) > 2*MaxTextBytes {
		return invalid(field, "too long")
	}
	if _, err := hex.DecodeString(s); err != nil || strings.ToLower(s) != s {
		return invalid(field, "want lowercase hex of whole bytes")
	}
	return nil
}

// parseP256SPKI parses a DER SPKI that must hold an ECDSA P-256 key.
func parseP256SPKI(field string, der []byte) (*ecdsa.PublicKey, error) {
	if len(der) == 0 {
		return nil, missing(field)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, invalidErr(field, "not a DER SubjectPublicKeyInfo", err)
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, invalid(field, fmt.Sprintf("is %T, want an ECDSA P-256 key", pub))
	}
	return ek, nil
}

// checkPublicKeyForSpec checks that der is the DER SPKI of a public key of
// the given asymmetric key spec (RSA modulus size, ECC curve).
func checkPublicKeyForSpec(field string, der []byte, info keyspec.Info) error {
	if info.Curve == "secp256k1" {
		// crypto/x509 does not know secp256k1.
		if _, err := secp256k1.ParsePKIXPublicKey(der); err != nil {
			return invalidErr(field, "not a secp256k1 SubjectPublicKeyInfo", err)
		}
		return nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return invalidErr(field, "not a DER SubjectPublicKeyInfo", err)
	}
	switch info.Family {
	case keyspec.FamilyRSA:
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return invalid(field, fmt.Sprintf("is %T, want an RSA key for %s", pub, info.Spec))
		}
		if rk.N.BitLen() != info.Bits {
			return invalid(field, fmt.Sprintf("RSA-%d key, want RSA-%d for %s", rk.N.BitLen(), info.Bits, info.Spec))
		}
	case keyspec.FamilyECC:
		ek, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return invalid(field, fmt.Sprintf("is %T, want an EC key for %s", pub, info.Spec))
		}
		if ek.Curve.Params().Name != info.Curve {
			return invalid(field, fmt.Sprintf("curve %s, want %s for %s", ek.Curve.Params().Name, info.Curve, info.Spec))
		}
	default:
		return invalid(field, fmt.Sprintf("%s keys have no public key", info.Spec))
	}
	return nil
}

// checkClock applies the validity window [notBefore-skew, notAfter+skew].
// A zero notAfter means no expiry.
func checkClock(now time.Time, skew time.Duration, notBeforeField string, notBefore time.Time, notAfterField string, notAfter time.Time) error {
	if skew < 0 {
		skew = 0
	}
	if notBefore.After(now.Add(skew)) {
		return fmt.Errorf("%w: %s %s is more than %s after now (%s)", ErrNotYetValid, notBeforeField,
			notBefore.Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	if !notAfter.IsZero() && now.After(notAfter.Add(skew)) {
		return fmt.Errorf("%w: %s %s is more than %s before now (%s)", ErrExpired, notAfterField,
			notAfter.Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	return nil
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
