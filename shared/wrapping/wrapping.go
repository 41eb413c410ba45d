// Package wrapping is the pure-Go reference of the four KMS key-material
// wrapping formats (RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256,
// RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256) and of RFC 5649 AES key
// wrap with padding. The KMS emulator unwraps with it, and tests use it to
// check what the HSM produced; the agent itself wraps inside the HSM.
package wrapping

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SHA-1 is what RSAES_OAEP_SHA_1 means; KMS still accepts it.
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/keyferry/keyferry/shared/keyspec"
)

// EphemeralAESKeyBytes is the size of the fresh AES key in RSA_AES_KEY_WRAP_*.
const EphemeralAESKeyBytes = 32

// ErrUnwrap is returned (wrapped) when a blob cannot be unwrapped: wrong
// private key, corrupted blob, or wrong algorithm.
var ErrUnwrap = errors.New("wrapping: cannot unwrap key material")

// NewHash returns the OAEP/MGF1 hash of a wrapping algorithm.
func NewHash(a keyspec.WrappingAlgorithm) (hash.Hash, error) {
	switch a {
	case keyspec.RSAESOAEPSHA1, keyspec.RSAAESKeyWrapSHA1:
		return sha1.New(), nil //nolint:gosec
	case keyspec.RSAESOAEPSHA256, keyspec.RSAAESKeyWrapSHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("wrapping: unknown wrapping algorithm %q", string(a))
}

// HashID returns the crypto.Hash of a wrapping algorithm.
func HashID(a keyspec.WrappingAlgorithm) (crypto.Hash, error) {
	if a.SHA256() {
		return crypto.SHA256, nil
	}
	if a.Valid() {
		return crypto.SHA1, nil
	}
	return 0, fmt.Errorf("wrapping: unknown wrapping algorithm %q", string(a))
}

// ParsePublicKey parses a KMS wrapping public key (DER SubjectPublicKeyInfo,
// as GetParametersForImport returns it) and reports its wrapping key spec.
func ParsePublicKey(der []byte) (*rsa.PublicKey, keyspec.WrappingKeySpec, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, "", fmt.Errorf("wrapping: parse wrapping public key: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, "", fmt.Errorf("wrapping: wrapping public key is %T, want RSA", pub)
	}
	ws, ok := keyspec.WrappingKeySpecForBits(rk.N.BitLen())
	if !ok {
		return nil, "", fmt.Errorf("wrapping: wrapping public key is RSA-%d, want 2048, 3072 or 4096", rk.N.BitLen())
	}
	return rk, ws, nil
}

// Wrap encrypts material for import under pub with algorithm a, exactly as
// KMS expects it, after checking the combination is legal for spec. random
// may be nil (crypto/rand).
func Wrap(random io.Reader, pub *rsa.PublicKey, spec keyspec.Spec, a keyspec.WrappingAlgorithm, material []byte) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	ws, ok := keyspec.WrappingKeySpecForBits(pub.N.BitLen())
	if !ok {
		return nil, fmt.Errorf("wrapping: wrapping public key is RSA-%d, want 2048, 3072 or 4096", pub.N.BitLen())
	}
	if err := keyspec.CheckWrapping(spec, a, ws); err != nil {
		return nil, err
	}
	h, err := NewHash(a)
	if err != nil {
		return nil, err
	}
	if !a.Hybrid() {
		out, err := rsa.EncryptOAEP(h, random, pub, material, nil)
		if err != nil {
			return nil, fmt.Errorf("wrapping: %s of %d bytes: %w", a, len(material), err)
		}
		return out, nil
	}
	k := make([]byte, EphemeralAESKeyBytes)
	if _, err := io.ReadFull(random, k); err != nil {
		return nil, fmt.Errorf("wrapping: ephemeral AES key: %w", err)
	}
	defer clear(k)
	head, err := rsa.EncryptOAEP(h, random, pub, k, nil)
	if err != nil {
		return nil, fmt.Errorf("wrapping: %s OAEP of the AES key: %w", a, err)
	}
	tail, err := KeyWrapPad(k, material)
	if err != nil {
		return nil, err
	}
	return append(head, tail...), nil
}

// Unwrap reverses Wrap with the wrapping private key. It does not check the
// material against a key spec; see keyspec.ValidateMaterial.
func Unwrap(priv *rsa.PrivateKey, a keyspec.WrappingAlgorithm, blob []byte) ([]byte, error) {
	h, err := NewHash(a)
	if err != nil {
		return nil, err
	}
	k := priv.Size()
	if !a.Hybrid() {
		if len(blob) != k {
			return nil, fmt.Errorf("%w: %s blob is %d bytes, want %d", ErrUnwrap, a, len(blob), k)
		}
		out, err := rsa.DecryptOAEP(h, nil, priv, blob, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrUnwrap, a, err)
		}
		return out, nil
	}
	if len(blob) < k+16 {
		return nil, fmt.Errorf("%w: %s blob is %d bytes, want at least %d", ErrUnwrap, a, len(blob), k+16)
	}
	aesKey, err := rsa.DecryptOAEP(h, nil, priv, blob[:k], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s OAEP block: %v", ErrUnwrap, a, err)
	}
	defer clear(aesKey)
	if len(aesKey) != 16 && len(aesKey) != 24 && len(aesKey) != 32 {
		return nil, fmt.Errorf("%w: %s: AES key is %d bytes", ErrUnwrap, a, len(aesKey))
	}
	out, err := KeyUnwrapPad(aesKey, blob[k:])
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnwrap, a, err)
	}
	return out, nil
}
