package gost

import (
	"math/big"
	"math/bits"
)

// maxLimbs is the widest modulus the package handles: 512 bits in 64-bit limbs.
const maxLimbs = 8

// fe is a residue in little-endian 64-bit limbs. Only the first field.n limbs are used; the
// fixed width keeps every value on the stack and every loop bound public.
type fe [maxLimbs]uint64

// field is arithmetic modulo an odd m < 2^(64n) in the Montgomery domain (R = 2^(64n)).
//
// Every operation runs the same instructions and touches the same memory whatever the values:
// loops run to n (a property of the curve, not of a secret), carries are folded with masks and
// conditional subtractions are selects, never branches. This is what signing relies on to keep
// the private key and the nonce out of timing and cache traces.
type field struct {
	n    int    // limbs in use
	m    fe     // the modulus
	minv uint64 // -m^-1 mod 2^64
	rr   fe     // R^2 mod m, to enter the Montgomery domain
	one  fe     // R mod m: 1 in the Montgomery domain
	mm2  fe     // m-2, the public exponent of inversion by Fermat
	bits int    // bit length of m
	mod  *big.Int
}

func newField(m *big.Int) *field {
	if m.Sign() <= 0 || m.Bit(0) == 0 || m.BitLen() > 64*maxLimbs {
		panic("gost: modulus must be odd, positive and at most 512 bits")
	}
	f := &field{n: (m.BitLen() + 63) / 64, bits: m.BitLen(), mod: new(big.Int).Set(m)}
	f.m = feFromBig(m)
	// Newton's iteration for m^-1 mod 2^64: each step doubles the correct low bits.
	inv := uint64(1)
	for range 6 {
		inv *= 2 - f.m[0]*inv
	}
	f.minv = -inv
	r := new(big.Int).Lsh(big.NewInt(1), uint(64*f.n))
	f.one = feFromBig(new(big.Int).Mod(r, m))
	f.rr = feFromBig(new(big.Int).Mod(new(big.Int).Mul(r, r), m))
	f.mm2 = feFromBig(new(big.Int).Sub(m, big.NewInt(2)))
	return f
}

// feFromBig converts a non-negative x < 2^512. Only for public values and for constants:
// math/big is not constant time.
func feFromBig(x *big.Int) fe {
	var z fe
	b := x.Bits()
	for i := 0; i < len(b) && i < maxLimbs; i++ {
		z[i] = uint64(b[i])
	}
	return z
}

func (f *field) toBig(x *fe) *big.Int {
	b := make([]byte, 8*f.n)
	for i := 0; i < f.n; i++ {
		for j := 0; j < 8; j++ {
			b[len(b)-1-8*i-j] = byte(x[i] >> (8 * j))
		}
	}
	return new(big.Int).SetBytes(b)
}

// mul sets z = x*y/R mod m (CIOS Montgomery multiplication). x, y < m; z may alias either.
func (f *field) mul(z, x, y *fe) {
	n := f.n
	var t [maxLimbs + 2]uint64
	for i := 0; i < n; i++ {
		// t += x*y[i]
		var c, cc uint64
		yi := y[i]
		for j := 0; j < n; j++ {
			hi, lo := bits.Mul64(x[j], yi)
			lo, cc = bits.Add64(lo, t[j], 0)
			hi += cc
			lo, cc = bits.Add64(lo, c, 0)
			hi += cc
			t[j], c = lo, hi
		}
		t[n], cc = bits.Add64(t[n], c, 0)
		t[n+1] = cc
		// t = (t + q*m) / 2^64 with q chosen so that the low limb vanishes.
		q := t[0] * f.minv
		hi, lo := bits.Mul64(q, f.m[0])
		_, cc = bits.Add64(lo, t[0], 0)
		c = hi + cc
		for j := 1; j < n; j++ {
			hi, lo = bits.Mul64(q, f.m[j])
			lo, cc = bits.Add64(lo, t[j], 0)
			hi += cc
			lo, cc = bits.Add64(lo, c, 0)
			hi += cc
			t[j-1], c = lo, hi
		}
		t[n-1], cc = bits.Add64(t[n], c, 0)
		t[n] = t[n+1] + cc
	}
	// t < 2m: subtract m once and keep the difference unless it borrowed.
	var d fe
	var b uint64
	for j := 0; j < n; j++ {
		d[j], b = bits.Sub64(t[j], f.m[j], b)
	}
	_, b = bits.Sub64(t[n], 0, b)
	keep := -b // all ones: t < m, keep t
	for j := 0; j < n; j++ {
		z[j] = t[j]&keep | d[j]&^keep
	}
	for j := n; j < maxLimbs; j++ {
		z[j] = 0
	}
}

// add sets z = x+y mod m for x, y < m.
func (f *field) add(z, x, y *fe) {
	var s, d fe
	var c, b uint64
	for j := 0; j < f.n; j++ {
		s[j], c = bits.Add64(x[j], y[j], c)
	}
	for j := 0; j < f.n; j++ {
		d[j], b = bits.Sub64(s[j], f.m[j], b)
	}
	// Keep s only when the sum did not carry out and s-m borrowed (s < m).
	keep := -(b &^ c)
	for j := 0; j < f.n; j++ {
		z[j] = s[j]&keep | d[j]&^keep
	}
}

// sub sets z = x-y mod m for x, y < m.
func (f *field) sub(z, x, y *fe) {
	var d fe
	var b, c uint64
	for j := 0; j < f.n; j++ {
		d[j], b = bits.Sub64(x[j], y[j], b)
	}
	mask := -b // add m back when it borrowed
	for j := 0; j < f.n; j++ {
		z[j], c = bits.Add64(d[j], f.m[j]&mask, c)
	}
}

func (f *field) toMont(z, x *fe) { f.mul(z, x, &f.rr) }

func (f *field) fromMont(z, x *fe) {
	one := fe{1}
	f.mul(z, x, &one)
}

// inv sets z = x^-1 in the Montgomery domain (x^(m-2), m prime); 0 maps to 0. The exponent is
// public, so branching on its bits reveals nothing about x.
func (f *field) inv(z, x *fe) {
	r := f.one
	base := *x
	for i := f.bits - 1; i >= 0; i-- {
		f.mul(&r, &r, &r)
		if f.mm2[i/64]>>(i%64)&1 == 1 {
			f.mul(&r, &r, &base)
		}
	}
	*z = r
}

// invPublic sets z = x^-1 in the Montgomery domain, like inv, by the extended Euclidean
// algorithm of math/big, whose time depends on x: only for public values (verification), where
// it costs a small fraction of inv's exponentiation. 0 maps to 0.
func (f *field) invPublic(z, x *fe) {
	var plain fe
	f.fromMont(&plain, x)
	v := f.toBig(&plain)
	if v.ModInverse(v, f.mod) == nil {
		*z = fe{}
		return
	}
	plain = feFromBig(v)
	f.toMont(z, &plain)
}

// isZero returns 1 if x == 0 and 0 otherwise, without branching.
func (f *field) isZero(x *fe) uint64 {
	var acc uint64
	for j := 0; j < f.n; j++ {
		acc |= x[j]
	}
	// acc|-acc has its top bit set exactly when acc != 0.
	return 1 ^ (acc|-acc)>>63
}

// less returns 1 if x < m and 0 otherwise, without branching.
func (f *field) less(x *fe) uint64 {
	var b uint64
	for j := 0; j < f.n; j++ {
		_, b = bits.Sub64(x[j], f.m[j], b)
	}
	return b
}

// cswap exchanges a and b when bit is 1, without branching.
func cswap(a, b *fe, bit uint64) {
	mask := -bit
	for j := range a {
		t := (a[j] ^ b[j]) & mask
		a[j] ^= t
		b[j] ^= t
	}
}

// feFromBytesBE reads a big-endian integer of at most 64 bytes, without branching on its value.
func feFromBytesBE(b []byte) fe {
	var z fe
	for i, v := range b {
		k := len(b) - 1 - i
		z[k/8] |= uint64(v) << (8 * (k % 8))
	}
	return z
}

// bytesBE writes the low size bytes of x big-endian.
func (x *fe) bytesBE(size int) []byte {
	out := make([]byte, size)
	for k := 0; k < size; k++ {
		out[size-1-k] = byte(x[k/8] >> (8 * (k % 8)))
	}
	return out
}
