package wrapping

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
)

// kwpICV is the RFC 5649 alternative initial value prefix.
var kwpICV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// ErrKeyWrapIntegrity is returned (wrapped) when an RFC 5649 unwrap fails its
// integrity check: wrong key, corrupted or truncated ciphertext.
var ErrKeyWrapIntegrity = errors.New("wrapping: AES key wrap integrity check failed")

// maxKWPPlaintext bounds the plaintext so the 32-bit MLI cannot overflow and
// no caller can make us allocate unbounded memory.
const maxKWPPlaintext = 1 << 20

// KeyWrapPad wraps plaintext under kek with AES key wrap with padding
// (RFC 5649). kek must be 16, 24 or 32 bytes; plaintext 1 to 1 MiB.
func KeyWrapPad(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("wrapping: RFC 5649 KEK: %w", err)
	}
	m := len(plaintext)
	if m == 0 || m > maxKWPPlaintext {
		return nil, fmt.Errorf("wrapping: RFC 5649 plaintext length %d outside 1..%d", m, maxKWPPlaintext)
	}
	n := (m + 7) / 8
	var a [8]byte
	copy(a[:4], kwpICV[:])
	binary.BigEndian.PutUint32(a[4:], uint32(m))
	padded := make([]byte, 8*n)
	copy(padded, plaintext)
	if n == 1 {
		out := make([]byte, 16)
		copy(out, a[:])
		copy(out[8:], padded)
		block.Encrypt(out, out)
		return out, nil
	}
	return wrapW(block, a, padded), nil
}

// KeyUnwrapPad reverses KeyWrapPad. Any integrity failure returns an error
// wrapping ErrKeyWrapIntegrity and no plaintext.
func KeyUnwrapPad(kek, ciphertext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("wrapping: RFC 5649 KEK: %w", err)
	}
	c := len(ciphertext)
	if c < 16 || c%8 != 0 || c > maxKWPPlaintext+16 {
		return nil, fmt.Errorf("%w: ciphertext length %d is not a multiple of 8 of at least 16", ErrKeyWrapIntegrity, c)
	}
	n := c/8 - 1
	var a [8]byte
	var p []byte
	if n == 1 {
		buf := make([]byte, 16)
		block.Decrypt(buf, ciphertext)
		copy(a[:], buf[:8])
		p = buf[8:]
	} else {
		a, p = unwrapW(block, ciphertext)
	}
	if subtle.ConstantTimeCompare(a[:4], kwpICV[:]) != 1 {
		return nil, fmt.Errorf("%w: bad integrity check value", ErrKeyWrapIntegrity)
	}
	m := int(binary.BigEndian.Uint32(a[4:]))
	if m <= 8*(n-1) || m > 8*n {
		return nil, fmt.Errorf("%w: message length indicator %d out of range for %d blocks", ErrKeyWrapIntegrity, m, n)
	}
	var nz byte
	for _, b := range p[m:] {
		nz |= b
	}
	if nz != 0 {
		return nil, fmt.Errorf("%w: non-zero padding", ErrKeyWrapIntegrity)
	}
	return p[:m], nil
}

// wrapW is the RFC 3394 wrapping process W with initial value a over n>=2 blocks.
func wrapW(block cipher.Block, a [8]byte, p []byte) []byte {
	n := len(p) / 8
	r := make([]byte, len(p))
	copy(r, p)
	var b [16]byte
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], r[(i-1)*8:i*8])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			copy(a[:], b[:8])
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(a[:])^t)
			copy(r[(i-1)*8:i*8], b[8:])
		}
	}
	out := make([]byte, 8+len(r))
	copy(out, a[:])
	copy(out[8:], r)
	return out
}

// unwrapW is the RFC 3394 unwrapping process W^-1; it returns A and the blocks.
func unwrapW(block cipher.Block, c []byte) ([8]byte, []byte) {
	n := len(c)/8 - 1
	var a [8]byte
	copy(a[:], c[:8])
	r := make([]byte, 8*n)
	copy(r, c[8:])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], r[(i-1)*8:i*8])
			block.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(r[(i-1)*8:i*8], b[8:])
		}
	}
	return a, r
}
