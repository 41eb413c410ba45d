// Package keyspec is the one table of KMS key specs that keyferry can import:
// which key usages each spec allows, which wrapping algorithms and wrapping
// key specs AWS KMS accepts for it, and the exact bytes KMS expects as key
// material. Every other package (agent, control plane, KMS emulator) asks this
// table instead of encoding the rules again.
package keyspec

import (
	"errors"
	"fmt"
	"sort"
)

// Spec is a KMS KeySpec value, e.g. "SYMMETRIC_DEFAULT".
type Spec string

// Importable KMS key specs.
const (
	SymmetricDefault Spec = "SYMMETRIC_DEFAULT"
	HMAC224          Spec = "HMAC_224"
	HMAC256          Spec = "HMAC_256"
	HMAC384          Spec = "HMAC_384"
	HMAC512          Spec = "HMAC_512"
	RSA2048          Spec = "RSA_2048"
	RSA3072          Spec = "RSA_3072"
	RSA4096          Spec = "RSA_4096"
	ECCNISTP256      Spec = "ECC_NIST_P256"
	ECCNISTP384      Spec = "ECC_NIST_P384"
	ECCNISTP521      Spec = "ECC_NIST_P521"
	ECCSECGP256K1    Spec = "ECC_SECG_P256K1"
)

// Family groups key specs that share a material format and HSM key type.
type Family int

// Key families.
const (
	FamilySymmetric Family = iota + 1
	FamilyHMAC
	FamilyRSA
	FamilyECC
)

func (f Family) String() string {
	switch f {
	case FamilySymmetric:
		return "symmetric"
	case FamilyHMAC:
		return "hmac"
	case FamilyRSA:
		return "rsa"
	case FamilyECC:
		return "ecc"
	}
	return fmt.Sprintf("family(%d)", int(f))
}

// Usage is a KMS KeyUsage value.
type Usage string

// KMS key usages.
const (
	EncryptDecrypt    Usage = "ENCRYPT_DECRYPT"
	SignVerify        Usage = "SIGN_VERIFY"
	GenerateVerifyMAC Usage = "GENERATE_VERIFY_MAC"
	KeyAgreement      Usage = "KEY_AGREEMENT"
)

// MaterialFormat says what bytes KMS expects once the wrapping is removed.
type MaterialFormat int

// Material formats.
const (
	// MaterialRaw is the raw secret key bytes (symmetric and HMAC keys).
	MaterialRaw MaterialFormat = iota + 1
	// MaterialPKCS8 is the private key as DER PKCS#8 PrivateKeyInfo (RFC 5208);
	// KMS derives the public key from it.
	MaterialPKCS8
)

func (m MaterialFormat) String() string {
	switch m {
	case MaterialRaw:
		return "raw"
	case MaterialPKCS8:
		return "pkcs8-der"
	}
	return fmt.Sprintf("format(%d)", int(m))
}

// Info is one row of the table.
type Info struct {
	Spec   Spec
	Family Family
	// Usages lists the key usages KMS allows for this spec; the first is the default.
	Usages []Usage
	// Format is the material format KMS expects.
	Format MaterialFormat
	// KeyBytes is the length keyferry generates for secret keys (symmetric, HMAC).
	KeyBytes int
	// MinKeyBytes and MaxKeyBytes bound the raw length KMS accepts on import.
	MinKeyBytes, MaxKeyBytes int
	// Bits is the modulus size for RSA and the field size for ECC.
	Bits int
	// Curve is the curve name for ECC specs ("P-256", "P-384", "P-521", "secp256k1").
	Curve string
	// Hash is the digest that goes with the spec (HMAC digest; default signing digest).
	Hash string
}

// Symmetric reports whether the spec is SYMMETRIC_DEFAULT (the only family that
// takes ImportType, KeyMaterialId and in-place rotation).
func (i Info) Symmetric() bool { return i.Family == FamilySymmetric }

// Asymmetric reports whether the spec is an RSA or ECC key pair.
func (i Info) Asymmetric() bool { return i.Family == FamilyRSA || i.Family == FamilyECC }

// AllowsUsage reports whether u is a legal key usage for the spec.
func (i Info) AllowsUsage(u Usage) bool {
	for _, x := range i.Usages {
		if x == u {
			return true
		}
	}
	return false
}

var table = map[Spec]Info{
	SymmetricDefault: {Spec: SymmetricDefault, Family: FamilySymmetric, Usages: []Usage{EncryptDecrypt}, Format: MaterialRaw, KeyBytes: 32, MinKeyBytes: 32, MaxKeyBytes: 32, Bits: 256},
	HMAC224:          {Spec: HMAC224, Family: FamilyHMAC, Usages: []Usage{GenerateVerifyMAC}, Format: MaterialRaw, KeyBytes: 28, MinKeyBytes: 28, MaxKeyBytes: 64, Bits: 224, Hash: "SHA-224"},
	HMAC256:          {Spec: HMAC256, Family: FamilyHMAC, Usages: []Usage{GenerateVerifyMAC}, Format: MaterialRaw, KeyBytes: 32, MinKeyBytes: 32, MaxKeyBytes: 64, Bits: 256, Hash: "SHA-256"},
	HMAC384:          {Spec: HMAC384, Family: FamilyHMAC, Usages: []Usage{GenerateVerifyMAC}, Format: MaterialRaw, KeyBytes: 48, MinKeyBytes: 48, MaxKeyBytes: 128, Bits: 384, Hash: "SHA-384"},
	HMAC512:          {Spec: HMAC512, Family: FamilyHMAC, Usages: []Usage{GenerateVerifyMAC}, Format: MaterialRaw, KeyBytes: 64, MinKeyBytes: 64, MaxKeyBytes: 128, Bits: 512, Hash: "SHA-512"},
	RSA2048:          {Spec: RSA2048, Family: FamilyRSA, Usages: []Usage{EncryptDecrypt, SignVerify}, Format: MaterialPKCS8, Bits: 2048, Hash: "SHA-256"},
	RSA3072:          {Spec: RSA3072, Family: FamilyRSA, Usages: []Usage{EncryptDecrypt, SignVerify}, Format: MaterialPKCS8, Bits: 3072, Hash: "SHA-256"},
	RSA4096:          {Spec: RSA4096, Family: FamilyRSA, Usages: []Usage{EncryptDecrypt, SignVerify}, Format: MaterialPKCS8, Bits: 4096, Hash: "SHA-256"},
	ECCNISTP256:      {Spec: ECCNISTP256, Family: FamilyECC, Usages: []Usage{SignVerify, KeyAgreement}, Format: MaterialPKCS8, Bits: 256, Curve: "P-256", Hash: "SHA-256"},
	ECCNISTP384:      {Spec: ECCNISTP384, Family: FamilyECC, Usages: []Usage{SignVerify, KeyAgreement}, Format: MaterialPKCS8, Bits: 384, Curve: "P-384", Hash: "SHA-384"},
	ECCNISTP521:      {Spec: ECCNISTP521, Family: FamilyECC, Usages: []Usage{SignVerify, KeyAgreement}, Format: MaterialPKCS8, Bits: 521, Curve: "P-521", Hash: "SHA-512"},
	ECCSECGP256K1:    {Spec: ECCSECGP256K1, Family: FamilyECC, Usages: []Usage{SignVerify}, Format: MaterialPKCS8, Bits: 256, Curve: "secp256k1", Hash: "SHA-256"},
}

// ErrUnknownSpec is returned (wrapped) for a key spec that is not importable.
var ErrUnknownSpec = errors.New("keyspec: unknown or non-importable key spec")

// Lookup returns the row for s.
func Lookup(s Spec) (Info, error) {
	i, ok := table[s]
	if !ok {
		return Info{}, fmt.Errorf("%w: %q (importable: %v)", ErrUnknownSpec, string(s), All())
	}
	return i, nil
}

// MustLookup is Lookup for specs known at compile time; it panics otherwise.
func MustLookup(s Spec) Info {
	i, err := Lookup(s)
	if err != nil {
		panic(err)
	}
	return i
}

// All returns every importable key spec in a stable order.
func All() []Spec {
	out := make([]Spec, 0, len(table))
	for s := range table {
		out = append(out, s)
	}
	sort.Slice(out, func(a, b int) bool { return order(out[a]) < order(out[b]) })
	return out
}

func order(s Spec) int {
	i := table[s]
	return int(i.Family)*10000 + i.Bits*2 + len(i.Curve)
}

// WrappingAlgorithm is a KMS AlgorithmSpec for GetParametersForImport.
type WrappingAlgorithm string

// The four wrapping algorithms KMS accepts (RSAES_PKCS1_V1_5 is no longer accepted).
const (
	RSAESOAEPSHA1         WrappingAlgorithm = "RSAES_OAEP_SHA_1"
	RSAESOAEPSHA256       WrappingAlgorithm = "RSAES_OAEP_SHA_256"
	RSAAESKeyWrapSHA1     WrappingAlgorithm = "RSA_AES_KEY_WRAP_SHA_1"
	RSAAESKeyWrapSHA256   WrappingAlgorithm = "RSA_AES_KEY_WRAP_SHA_256"
	RSAESPKCS1V15Rejected WrappingAlgorithm = "RSAES_PKCS1_V1_5"
)

// WrappingAlgorithms lists the accepted wrapping algorithms, strongest first.
func WrappingAlgorithms() []WrappingAlgorithm {
	return []WrappingAlgorithm{RSAAESKeyWrapSHA256, RSAESOAEPSHA256, RSAAESKeyWrapSHA1, RSAESOAEPSHA1}
}

// Hybrid reports whether the algorithm is RSA-OAEP of an AES key plus RFC 5649.
func (a WrappingAlgorithm) Hybrid() bool {
	return a == RSAAESKeyWrapSHA1 || a == RSAAESKeyWrapSHA256
}

// SHA256 reports whether the algorithm uses SHA-256 for OAEP and MGF1.
func (a WrappingAlgorithm) SHA256() bool {
	return a == RSAESOAEPSHA256 || a == RSAAESKeyWrapSHA256
}

// Valid reports whether a is one of the four accepted algorithms.
func (a WrappingAlgorithm) Valid() bool {
	switch a {
	case RSAESOAEPSHA1, RSAESOAEPSHA256, RSAAESKeyWrapSHA1, RSAAESKeyWrapSHA256:
		return true
	}
	return false
}

// WrappingKeySpec is a KMS WrappingKeySpec value.
type WrappingKeySpec string

// Wrapping key specs.
const (
	WrapRSA2048 WrappingKeySpec = "RSA_2048"
	WrapRSA3072 WrappingKeySpec = "RSA_3072"
	WrapRSA4096 WrappingKeySpec = "RSA_4096"
)

// WrappingKeySpecs lists the wrapping key specs, largest (preferred) first.
func WrappingKeySpecs() []WrappingKeySpec {
	return []WrappingKeySpec{WrapRSA4096, WrapRSA3072, WrapRSA2048}
}

// Bits returns the modulus size of the wrapping key spec, or 0 if unknown.
func (w WrappingKeySpec) Bits() int {
	switch w {
	case WrapRSA2048:
		return 2048
	case WrapRSA3072:
		return 3072
	case WrapRSA4096:
		return 4096
	}
	return 0
}

// WrappingKeySpecForBits maps a modulus size back to its spec.
func WrappingKeySpecForBits(bits int) (WrappingKeySpec, bool) {
	for _, w := range WrappingKeySpecs() {
		if w.Bits() == bits {
			return w, true
		}
	}
	return "", false
}

// IllegalCombinationError says why KMS would refuse a (key spec, wrapping
// algorithm, wrapping key spec) combination.
type IllegalCombinationError struct {
	Spec      Spec
	Algorithm WrappingAlgorithm
	KeySpec   WrappingKeySpec
	Reason    string
}

func (e *IllegalCombinationError) Error() string {
	return fmt.Sprintf("keyspec: %s cannot be wrapped with %s under %s: %s", e.Spec, e.Algorithm, e.KeySpec, e.Reason)
}

// CheckWrapping reports whether KMS accepts material of spec s wrapped with
// algorithm a under a wrapping key of spec w. The error is an
// *IllegalCombinationError or wraps ErrUnknownSpec.
func CheckWrapping(s Spec, a WrappingAlgorithm, w WrappingKeySpec) error {
	info, err := Lookup(s)
	if err != nil {
		return err
	}
	bad := func(reason string) error {
		return &IllegalCombinationError{Spec: s, Algorithm: a, KeySpec: w, Reason: reason}
	}
	if a == RSAESPKCS1V15Rejected {
		return bad("RSAES_PKCS1_V1_5 is no longer accepted by KMS (since 2023-10-10)")
	}
	if !a.Valid() {
		return bad("unknown wrapping algorithm")
	}
	if w.Bits() == 0 {
		return bad("unknown wrapping key spec (want RSA_2048, RSA_3072 or RSA_4096)")
	}
	switch info.Family {
	case FamilySymmetric, FamilyHMAC:
		if a.Hybrid() {
			return bad("symmetric and HMAC material takes RSAES_OAEP_* only")
		}
	case FamilyRSA:
		if !a.Hybrid() {
			return bad("RSA private keys are too large for RSAES_OAEP_*; use RSA_AES_KEY_WRAP_*")
		}
	case FamilyECC:
		if s == ECCNISTP521 && !a.Hybrid() && w == WrapRSA2048 {
			return bad("ECC_NIST_P521 material does not fit RSAES_OAEP_* under RSA_2048")
		}
	}
	return nil
}

// Legal lists every legal (algorithm, wrapping key spec) pair for s, strongest first.
func Legal(s Spec) []Combination {
	var out []Combination
	for _, a := range WrappingAlgorithms() {
		for _, w := range WrappingKeySpecs() {
			if CheckWrapping(s, a, w) == nil {
				out = append(out, Combination{Algorithm: a, KeySpec: w})
			}
		}
	}
	return out
}

// Combination is a wrapping algorithm with a wrapping key spec.
type Combination struct {
	Algorithm WrappingAlgorithm
	KeySpec   WrappingKeySpec
}
