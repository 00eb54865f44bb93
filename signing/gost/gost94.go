package gost

import (
	"encoding/binary"
	"hash"
	"math/bits"
)

// GOST R 34.11-94 (RFC 5831) with the test parameter set of the standard itself
// (id-GostR3411-94-TestParamSet, RFC 4357 section 11.2): the S-boxes of GOST 28147-89 given
// below and H0 = 0. This is the hash of СТ РК ГОСТ 34.311-95 as Kalkan computes it (libgcrypt's
// GOSTR3411_94), not the CryptoPro parameter set of Russian systems (libgcrypt's
// GOSTR3411_CP, Debian's gostsum without -t).
//
// The result is in libgcrypt's byte order. Debian's `gostsum -t` prints the same bytes
// reversed, and a wrong value for empty input.
//
// Like Streebog, it indexes tables by the data: for public data only.

// gost94TestSbox is id-GostR3411-94-TestParamSet: row i substitutes the i-th 4-bit nibble,
// least significant first.
var gost94TestSbox = [8][16]byte{
	{4, 10, 9, 2, 13, 8, 0, 14, 6, 11, 1, 12, 7, 15, 5, 3},
	{14, 11, 4, 12, 6, 13, 15, 10, 2, 3, 8, 1, 0, 7, 5, 9},
	{5, 8, 1, 13, 10, 3, 4, 2, 14, 15, 12, 7, 6, 0, 9, 11},
	{7, 13, 10, 1, 0, 8, 9, 15, 14, 4, 6, 12, 11, 2, 5, 3},
	{6, 12, 7, 1, 5, 15, 13, 8, 4, 10, 9, 14, 0, 3, 11, 2},
	{4, 11, 10, 0, 7, 2, 1, 13, 3, 6, 8, 5, 9, 12, 15, 14},
	{13, 11, 4, 1, 3, 15, 5, 9, 0, 10, 14, 7, 6, 8, 2, 12},
	{1, 15, 13, 0, 5, 7, 10, 4, 9, 2, 3, 14, 6, 11, 8, 12},
}

// gost94C3 is the constant C_3 of the key generation (RFC 5831 section 6.1), in memory order;
// C_2 and C_4 are zero.
var gost94C3 = [32]byte{
	0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00, 0xff, 0x00,
	0x00, 0xff, 0xff, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0xff,
}

// gost28147Encrypt enciphers one 64-bit block in place with GOST 28147-89 (32 rounds, keys
// k0..k7 three times, then k7..k0), as the step function of GOST R 34.11-94 uses it.
func gost28147Encrypt(block []byte, key *[32]byte) {
	var k [8]uint32
	for i := range k {
		k[i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	n1 := binary.LittleEndian.Uint32(block[0:])
	n2 := binary.LittleEndian.Uint32(block[4:])
	round := func(ki uint32) {
		x := n1 + ki
		var s uint32
		for i := range 8 {
			s |= uint32(gost94TestSbox[i][x>>(4*i)&0xf]) << (4 * i)
		}
		n1, n2 = n2^bits.RotateLeft32(s, 11), n1
	}
	for range 3 {
		for i := range 8 {
			round(k[i])
		}
	}
	for i := 7; i >= 0; i-- {
		round(k[i])
	}
	// The last round does not swap the halves.
	binary.LittleEndian.PutUint32(block[0:], n2)
	binary.LittleEndian.PutUint32(block[4:], n1)
}

// gost94A is A(y4||y3||y2||y1) = (y1^y2)||y4||y3||y2 over 64-bit words, y1 in bytes 0..7.
func gost94A(y [32]byte) (z [32]byte) {
	copy(z[:24], y[8:])
	for i := range 8 {
		z[24+i] = y[i] ^ y[8+i]
	}
	return z
}

// gost94P is the byte permutation φ(i + 1 + 4(k-1)) = 8i + k (RFC 5831 section 6.1), 0-based.
func gost94P(y [32]byte) (z [32]byte) {
	for i := range 4 {
		for k := range 8 {
			z[i+4*k] = y[8*i+k]
		}
	}
	return z
}

// gost94Psi is ψ over 16-bit words: a shift down by one word, the new top word being
// y1^y2^y3^y4^y13^y16 (RFC 5831 section 6.3).
func gost94Psi(y *[32]byte) {
	var t [2]byte
	for _, w := range []int{0, 1, 2, 3, 12, 15} {
		t[0] ^= y[2*w]
		t[1] ^= y[2*w+1]
	}
	copy(y[:30], y[2:])
	y[30], y[31] = t[0], t[1]
}

func xor32(a, b [32]byte) (z [32]byte) {
	for i := range z {
		z[i] = a[i] ^ b[i]
	}
	return z
}

// gost94Step is the step function f(H, M) (RFC 5831 section 6): key generation, encryption
// of the four 64-bit words of H, and the shuffle ψ^61(H ^ ψ(M ^ ψ^12(S))).
func gost94Step(h *[32]byte, m *[32]byte) {
	u, v := *h, *m
	s := *h
	for j := range 4 {
		if j > 0 {
			u = gost94A(u)
			if j == 2 {
				u = xor32(u, gost94C3)
			}
			v = gost94A(gost94A(v))
		}
		key := gost94P(xor32(u, v))
		gost28147Encrypt(s[8*j:8*j+8], &key)
	}
	for range 12 {
		gost94Psi(&s)
	}
	s = xor32(s, *m)
	gost94Psi(&s)
	t := xor32(*h, s)
	for range 61 {
		gost94Psi(&t)
	}
	*h = t
}

type gost94 struct {
	h     [32]byte
	sigma [4]uint64 // sum of the blocks mod 2^256
	n     [4]uint64 // length in bits mod 2^256
	buf   [32]byte
	nbuf  int
}

// NewGOST94 returns a GOST R 34.11-94 hash with the test parameter set: the hash of the
// Kazakh GOST 34.311-95 (see above).
func NewGOST94() hash.Hash { return &gost94{} }

// GOST94 returns the GOST R 34.11-94 hash (test parameter set) of data.
func GOST94(data []byte) [32]byte {
	var out [32]byte
	d := NewGOST94()
	d.Write(data)
	d.Sum(out[:0])
	return out
}

func (d *gost94) Reset()         { *d = gost94{} }
func (d *gost94) Size() int      { return 32 }
func (d *gost94) BlockSize() int { return 32 }

func add256(a *[4]uint64, b [32]byte) {
	var c uint64
	for i := range a {
		a[i], c = bits.Add64(a[i], binary.LittleEndian.Uint64(b[8*i:]), c)
	}
}

func addBits256(a *[4]uint64, bytes int) {
	var c uint64
	a[0], c = bits.Add64(a[0], uint64(bytes)<<3, 0)
	a[1], c = bits.Add64(a[1], uint64(bytes)>>61, c)
	a[2], c = bits.Add64(a[2], 0, c)
	a[3], _ = bits.Add64(a[3], 0, c)
}

func (d *gost94) block(m [32]byte) {
	gost94Step(&d.h, &m)
	add256(&d.sigma, m)
	addBits256(&d.n, 32)
}

func (d *gost94) Write(p []byte) (int, error) {
	total := len(p)
	if d.nbuf > 0 {
		k := copy(d.buf[d.nbuf:], p)
		d.nbuf += k
		p = p[k:]
		if d.nbuf < 32 {
			return total, nil
		}
		d.block(d.buf)
		d.nbuf = 0
	}
	for len(p) >= 32 {
		d.block([32]byte(p[:32]))
		p = p[32:]
	}
	d.nbuf = copy(d.buf[:], p)
	return total, nil
}

// Sum appends the hash to b; d itself is unchanged.
func (d *gost94) Sum(b []byte) []byte {
	c := *d
	if c.nbuf > 0 {
		// A last partial block is padded with zero bytes; an empty one is not hashed at all.
		var last [32]byte
		copy(last[:], c.buf[:c.nbuf])
		gost94Step(&c.h, &last)
		add256(&c.sigma, last)
		addBits256(&c.n, c.nbuf)
	}
	var l, s [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(l[8*i:], c.n[i])
		binary.LittleEndian.PutUint64(s[8*i:], c.sigma[i])
	}
	gost94Step(&c.h, &l)
	gost94Step(&c.h, &s)
	return append(b, c.h[:]...)
}
