// Package secp256k1 implements the SECG curve secp256k1 (y² = x³ + 7 over
// the 256-bit prime field of SEC 2, section 2.4.1), ECDSA signatures on it
// with ASN.1 DER encoding, and the PKCS#8 / SubjectPublicKeyInfo encodings
// that AWS KMS uses for ECC_SECG_P256K1 keys.
//
// Go's crypto/elliptic cannot represent this curve (CurveParams hard-codes
// a = -3), hence this package. It is written in pure Go on math/big for
// correctness and clarity, not speed, and it is NOT constant-time: it is
// meant for the control plane, the KMS emulator and tests, which check or
// use key material that an HSM already produced. Long-lived production
// signing keys belong in an HSM or in KMS.
package secp256k1

import (
	"math/big"
)

// Curve parameters from SEC 2 v2, section 2.4.1. They are unexported so that
// nobody can modify them; Order returns a copy of the group order.
var (
	// fieldP is the field prime 2^256 - 2^32 - 977.
	fieldP = mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F")
	// orderN is the order of the base point G.
	orderN = mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141")
	// curveB is the constant of the curve equation y² = x³ + curveB (a = 0).
	curveB = big.NewInt(7)
	// gX and gY are the coordinates of the base point G.
	gX = mustHex("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798")
	gY = mustHex("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8")
)

// Order returns a copy of N, the order of the base point G.
func Order() *big.Int { return new(big.Int).Set(orderN) }

// ByteSize is the length of a field element or scalar in bytes.
const ByteSize = 32

// halfN is orderN/2, the bound for low-S signatures.
var halfN = new(big.Int).Rsh(orderN, 1)

// sqrtExp is (fieldP+1)/4; fieldP ≡ 3 (mod 4), so v^sqrtExp is a square root of v when one exists.
var sqrtExp = new(big.Int).Rsh(new(big.Int).Add(fieldP, big.NewInt(1)), 2)

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("secp256k1: bad constant " + s)
	}
	return v
}

// IsOnCurve reports whether (x, y) is a finite point of the curve with both
// coordinates reduced modulo fieldP. The point at infinity is not on the curve.
func IsOnCurve(x, y *big.Int) bool {
	if x == nil || y == nil || x.Sign() < 0 || y.Sign() < 0 || x.Cmp(fieldP) >= 0 || y.Cmp(fieldP) >= 0 {
		return false
	}
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, fieldP)
	return y2.Cmp(rhs(x)) == 0
}

// rhs returns x³ + 7 mod fieldP.
func rhs(x *big.Int) *big.Int {
	x3 := new(big.Int).Mul(x, x)
	x3.Mul(x3, x)
	x3.Add(x3, curveB)
	return x3.Mod(x3, fieldP)
}

// decompress returns the y coordinate with the given parity (odd == true for
// prefix 0x03) for x, or false if x is not the abscissa of a curve point.
func decompress(x *big.Int, odd bool) (*big.Int, bool) {
	if x.Sign() < 0 || x.Cmp(fieldP) >= 0 {
		return nil, false
	}
	v := rhs(x)
	y := new(big.Int).Exp(v, sqrtExp, fieldP)
	chk := new(big.Int).Mul(y, y)
	if chk.Mod(chk, fieldP).Cmp(v) != 0 {
		return nil, false
	}
	if (y.Bit(0) == 1) != odd {
		y.Sub(fieldP, y)
	}
	return y, true
}

// jacobian is a point (X/Z², Y/Z³); Z == 0 is the point at infinity.
type jacobian struct{ x, y, z *big.Int }

func infinity() jacobian { return jacobian{new(big.Int), new(big.Int), new(big.Int)} }

func fromAffine(x, y *big.Int) jacobian {
	return jacobian{new(big.Int).Set(x), new(big.Int).Set(y), big.NewInt(1)}
}

func (p jacobian) isInfinity() bool { return p.z.Sign() == 0 }

// affine converts back; it returns (0, 0) for the point at infinity.
func (p jacobian) affine() (*big.Int, *big.Int) {
	if p.isInfinity() {
		return new(big.Int), new(big.Int)
	}
	zinv := new(big.Int).ModInverse(p.z, fieldP)
	zinv2 := new(big.Int).Mul(zinv, zinv)
	zinv2.Mod(zinv2, fieldP)
	x := new(big.Int).Mul(p.x, zinv2)
	x.Mod(x, fieldP)
	zinv3 := zinv2.Mul(zinv2, zinv)
	zinv3.Mod(zinv3, fieldP)
	y := new(big.Int).Mul(p.y, zinv3)
	y.Mod(y, fieldP)
	return x, y
}

func mod(v *big.Int) *big.Int { return v.Mod(v, fieldP) }

func mul(a, b *big.Int) *big.Int { return mod(new(big.Int).Mul(a, b)) }

func sub(a, b *big.Int) *big.Int { return mod(new(big.Int).Sub(a, b)) }

// double uses dbl-2009-l (a = 0).
func (p jacobian) double() jacobian {
	if p.isInfinity() || p.y.Sign() == 0 {
		return infinity()
	}
	a := mul(p.x, p.x)
	b := mul(p.y, p.y)
	c := mul(b, b)
	t := new(big.Int).Add(p.x, b)
	d := mul(t, t)
	d = sub(d, a)
	d = sub(d, c)
	d = mod(d.Lsh(d, 1))
	e := mod(new(big.Int).Mul(a, big.NewInt(3)))
	f := mul(e, e)
	x3 := sub(f, new(big.Int).Lsh(d, 1))
	y3 := mul(e, sub(d, x3))
	y3 = sub(y3, new(big.Int).Lsh(c, 3))
	z3 := mul(p.y, p.z)
	z3 = mod(z3.Lsh(z3, 1))
	return jacobian{x3, y3, z3}
}

// add uses add-2007-bl and falls back to double for equal inputs.
func (p jacobian) add(q jacobian) jacobian {
	if p.isInfinity() {
		return q
	}
	if q.isInfinity() {
		return p
	}
	z1z1 := mul(p.z, p.z)
	z2z2 := mul(q.z, q.z)
	u1 := mul(p.x, z2z2)
	u2 := mul(q.x, z1z1)
	s1 := mul(mul(p.y, q.z), z2z2)
	s2 := mul(mul(q.y, p.z), z1z1)
	h := sub(u2, u1)
	r := sub(s2, s1)
	if h.Sign() == 0 {
		if r.Sign() == 0 {
			return p.double()
		}
		return infinity()
	}
	r = mod(r.Lsh(r, 1))
	i := new(big.Int).Lsh(h, 1)
	i = mul(i, i)
	j := mul(h, i)
	v := mul(u1, i)
	x3 := sub(sub(mul(r, r), j), new(big.Int).Lsh(v, 1))
	y3 := sub(mul(r, sub(v, x3)), new(big.Int).Lsh(mul(s1, j), 1))
	zs := new(big.Int).Add(p.z, q.z)
	z3 := mul(sub(sub(mul(zs, zs), z1z1), z2z2), h)
	return jacobian{x3, y3, z3}
}

// scalarMult computes k·p by left-to-right double-and-add (variable time).
func scalarMult(p jacobian, k *big.Int) jacobian {
	acc := infinity()
	for i := k.BitLen() - 1; i >= 0; i-- {
		acc = acc.double()
		if k.Bit(i) == 1 {
			acc = acc.add(p)
		}
	}
	return acc
}

// ScalarBaseMult returns k·G in affine coordinates, or (0, 0) if k·G is the
// point at infinity (k ≡ 0 mod orderN). k must be non-negative.
func ScalarBaseMult(k *big.Int) (x, y *big.Int) {
	return scalarMult(fromAffine(gX, gY), k).affine()
}

// ScalarMult returns k·(x, y) in affine coordinates, or (0, 0) for the point
// at infinity. The caller must make sure (x, y) is on the curve (IsOnCurve)
// and k is non-negative.
func ScalarMult(x, y, k *big.Int) (*big.Int, *big.Int) {
	return scalarMult(fromAffine(x, y), k).affine()
}

// Add returns (x1, y1) + (x2, y2) for points on the curve; (0, 0) stands
// for the point at infinity on input and output.
func Add(x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	return toJacobian(x1, y1).add(toJacobian(x2, y2)).affine()
}

func toJacobian(x, y *big.Int) jacobian {
	if x.Sign() == 0 && y.Sign() == 0 {
		return infinity()
	}
	return fromAffine(x, y)
}
