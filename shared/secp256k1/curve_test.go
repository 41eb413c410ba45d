package secp256k1

import (
	"crypto/rand"
	"math/big"
	"testing"
)

func hexInt(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return v
}

func randScalar(t *testing.T) *big.Int {
	t.Helper()
	k, err := rand.Int(rand.Reader, new(big.Int).Sub(orderN, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	return k.Add(k, big.NewInt(1))
}

// TestScalarBaseMultKnownMultiples checks k·G against the published
// generator multiples (SEC 2 G; 2G and 3G as listed in the bitcoin test
// vectors; the openssl interop test checks them independently) and the
// group-order edge cases.
func TestScalarBaseMultKnownMultiples(t *testing.T) {
	tests := []struct {
		name string
		k    *big.Int
		x, y string
	}{
		{"1G", big.NewInt(1), "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"},
		{"2G", big.NewInt(2), "C6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5", "1AE168FEA63DC339A3C58419466CEAEEF7F632653266D0E1236431A950CFE52A"},
		{"3G", big.NewInt(3), "F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9", "388F7B0F632DE8140FE337E62A37F3566500A99934C2231B6CB9FD7584B8E672"},
		// (N-1)·G = -G = (Gx, P-Gy).
		{"(N-1)G", new(big.Int).Sub(orderN, big.NewInt(1)), "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", "B7C52588D95C3B9AA25B0403F1EEF75702E84BB7597AABE663B82F6F04EF2777"},
		{"NG is infinity", new(big.Int).Set(orderN), "0", "0"},
		{"0G is infinity", big.NewInt(0), "0", "0"},
		{"(N+1)G wraps to G", new(big.Int).Add(orderN, big.NewInt(1)), "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x, y := ScalarBaseMult(tc.k)
			if x.Cmp(hexInt(t, tc.x)) != 0 || y.Cmp(hexInt(t, tc.y)) != 0 {
				t.Fatalf("k·G = (%X, %X), want (%s, %s)", x, y, tc.x, tc.y)
			}
			if tc.x != "0" && !IsOnCurve(x, y) {
				t.Fatal("result not on curve")
			}
		})
	}
}

func TestGroupLaws(t *testing.T) {
	for i := range 8 {
		a, b := randScalar(t), randScalar(t)
		ax, ay := ScalarBaseMult(a)
		bx, by := ScalarBaseMult(b)
		// aG + bG == (a+b)G
		sx, sy := Add(ax, ay, bx, by)
		sum := new(big.Int).Add(a, b)
		wx, wy := ScalarBaseMult(sum.Mod(sum, orderN))
		if sx.Cmp(wx) != 0 || sy.Cmp(wy) != 0 {
			t.Fatalf("round %d: aG+bG != (a+b)G", i)
		}
		// b·(aG) == (ab)G
		px, py := ScalarMult(ax, ay, b)
		prod := new(big.Int).Mul(a, b)
		qx, qy := ScalarBaseMult(prod.Mod(prod, orderN))
		if px.Cmp(qx) != 0 || py.Cmp(qy) != 0 {
			t.Fatalf("round %d: b(aG) != (ab)G", i)
		}
		// aG + aG == 2a G (add falls back to doubling)
		dx, dy := Add(ax, ay, ax, ay)
		twice := new(big.Int).Lsh(a, 1)
		ex, ey := ScalarBaseMult(twice.Mod(twice, orderN))
		if dx.Cmp(ex) != 0 || dy.Cmp(ey) != 0 {
			t.Fatalf("round %d: aG+aG != 2aG", i)
		}
		// aG + (-aG) == infinity
		ix, iy := Add(ax, ay, ax, new(big.Int).Sub(fieldP, ay))
		if ix.Sign() != 0 || iy.Sign() != 0 {
			t.Fatalf("round %d: P + (-P) != infinity", i)
		}
		// infinity is the identity
		ox, oy := Add(new(big.Int), new(big.Int), ax, ay)
		if ox.Cmp(ax) != 0 || oy.Cmp(ay) != 0 {
			t.Fatalf("round %d: O + P != P", i)
		}
	}
}

func TestIsOnCurve(t *testing.T) {
	gyPlus1 := new(big.Int).Add(gY, big.NewInt(1))
	tests := []struct {
		name string
		x, y *big.Int
		want bool
	}{
		{"G", gX, gY, true},
		{"-G", gX, new(big.Int).Sub(fieldP, gY), true},
		{"G with y+1", gX, gyPlus1, false},
		{"infinity (0,0)", new(big.Int), new(big.Int), false},
		{"x+P (unreduced)", new(big.Int).Add(gX, fieldP), gY, false},
		{"y+P (unreduced)", gX, new(big.Int).Add(gY, fieldP), false},
		{"negative y", gX, new(big.Int).Neg(gY), false},
		{"nil x", nil, gY, false},
		{"nil y", gX, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsOnCurve(tc.x, tc.y); got != tc.want {
				t.Fatalf("IsOnCurve = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecompress(t *testing.T) {
	for range 8 {
		x, y := ScalarBaseMult(randScalar(t))
		got, ok := decompress(x, y.Bit(0) == 1)
		if !ok || got.Cmp(y) != 0 {
			t.Fatalf("decompress(%X) = %X, %v; want %X", x, got, ok, y)
		}
	}
	// Find an x with no point (x³+7 a non-residue, by Euler's criterion)
	// and check decompress refuses it.
	euler := new(big.Int).Rsh(new(big.Int).Sub(fieldP, big.NewInt(1)), 1)
	minus1 := new(big.Int).Sub(fieldP, big.NewInt(1))
	found := false
	for i := int64(1); i < 50 && !found; i++ {
		x := big.NewInt(i)
		if new(big.Int).Exp(rhs(x), euler, fieldP).Cmp(minus1) != 0 {
			continue
		}
		found = true
		if _, ok := decompress(x, false); ok {
			t.Fatalf("decompress accepted x=%d whose x³+7 is a non-residue", i)
		}
	}
	if !found {
		t.Fatal("no non-residue x³+7 found for x < 50")
	}
	if _, ok := decompress(fieldP, false); ok {
		t.Fatal("decompress accepted x = P")
	}
}

func BenchmarkScalarBaseMult(b *testing.B) {
	k := new(big.Int).Sub(orderN, big.NewInt(12345))
	for b.Loop() {
		ScalarBaseMult(k)
	}
}
