package gost

import (
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math/bits"
)

// Streebog is GOST R 34.11-2012 (RFC 6986). Its input and output are byte strings in the order
// every implementation uses (Debian's gost12sum, OpenSSL's GOST engine, libgcrypt): the
// standard's numbers read least significant byte first. The RFC's examples are printed the
// other way round; the tests reverse them.
//
// The hash uses table look-ups indexed by the data, as every fast software Streebog does: it is
// meant for public data (documents, SignedInfo), not for secrets.

// streebogLPS[j][v] is L(P(S(x))) restricted to byte j of an output word: the contribution of a
// byte v that S maps to π(v) and P moves to byte j. Built once from π and A so the file above
// holds only the standard's own constants.
var streebogLPS [8][256]uint64

// streebogRoundC are C_1..C_12 as little-endian 64-bit words.
var streebogRoundC [12][8]uint64

func init() {
	for j := range 8 {
		for v := range 256 {
			var acc uint64
			s := streebogPi[v]
			for k := range 8 {
				if s>>k&1 == 1 {
					// Bit 8j+k of the word (0 = least significant); A[0] is the most significant.
					acc ^= streebogA[63-(8*j+k)]
				}
			}
			streebogLPS[j][v] = acc
		}
	}
	for i, c := range streebogC {
		b, err := hex.DecodeString(c)
		if err != nil || len(b) != 64 {
			panic("gost: bad Streebog constant")
		}
		streebogRoundC[i] = wordsLE(reversed(b))
	}
}

func wordsLE(b []byte) (w [8]uint64) {
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return w
}

// lps computes L(P(S(a))) on a 512-bit state of eight little-endian words. P is the byte
// transposition: byte i of word j becomes byte j of word i.
func lps(a *[8]uint64) {
	var out [8]uint64
	for i := range 8 {
		var w uint64
		sh := 8 * uint(i)
		for j := range 8 {
			w ^= streebogLPS[j][byte(a[j]>>sh)]
		}
		out[i] = w
	}
	*a = out
}

func xor8(a, b *[8]uint64) (z [8]uint64) {
	for i := range z {
		z[i] = a[i] ^ b[i]
	}
	return z
}

// streebogG is the compression function g_N(h, m) = E(LPS(h ^ N), m) ^ h ^ m (RFC 6986 section 7).
func streebogG(h *[8]uint64, n, m *[8]uint64) {
	k := xor8(h, n)
	lps(&k)
	state := *m
	for i := range 12 {
		state = xor8(&state, &k)
		lps(&state)
		k = xor8(&k, &streebogRoundC[i])
		lps(&k)
	}
	for i := range 8 {
		h[i] ^= state[i] ^ k[i] ^ m[i]
	}
}

// add512 sets a = a + b mod 2^512.
func add512(a, b *[8]uint64) {
	var c uint64
	for i := range 8 {
		a[i], c = bits.Add64(a[i], b[i], c)
	}
}

type streebog struct {
	size  int // 32 or 64
	h     [8]uint64
	n     [8]uint64 // bits processed
	sigma [8]uint64 // sum of the blocks
	buf   [64]byte
	nbuf  int
}

// NewStreebog256 returns a GOST R 34.11-2012 hash with a 256-bit result.
func NewStreebog256() hash.Hash { d := &streebog{size: 32}; d.Reset(); return d }

// NewStreebog512 returns a GOST R 34.11-2012 hash with a 512-bit result.
func NewStreebog512() hash.Hash { d := &streebog{size: 64}; d.Reset(); return d }

// Streebog256 returns the 256-bit GOST R 34.11-2012 hash of data.
func Streebog256(data []byte) [32]byte {
	var out [32]byte
	d := NewStreebog256()
	d.Write(data)
	d.Sum(out[:0])
	return out
}

// Streebog512 returns the 512-bit GOST R 34.11-2012 hash of data.
func Streebog512(data []byte) [64]byte {
	var out [64]byte
	d := NewStreebog512()
	d.Write(data)
	d.Sum(out[:0])
	return out
}

func (d *streebog) Reset() {
	// The initial vector: 0^512 for the 512-bit hash, (00000001)^64 for the 256-bit one.
	iv := uint64(0)
	if d.size == 32 {
		iv = 0x0101010101010101
	}
	for i := range d.h {
		d.h[i] = iv
	}
	d.n, d.sigma, d.nbuf = [8]uint64{}, [8]uint64{}, 0
}

func (d *streebog) Size() int      { return d.size }
func (d *streebog) BlockSize() int { return 64 }

var streebog512Bits = [8]uint64{512}

func (d *streebog) block(m *[8]uint64) {
	streebogG(&d.h, &d.n, m)
	add512(&d.n, &streebog512Bits)
	add512(&d.sigma, m)
}

func (d *streebog) Write(p []byte) (int, error) {
	total := len(p)
	if d.nbuf > 0 {
		k := copy(d.buf[d.nbuf:], p)
		d.nbuf += k
		p = p[k:]
		if d.nbuf < 64 {
			return total, nil
		}
		m := wordsLE(d.buf[:])
		d.block(&m)
		d.nbuf = 0
	}
	for len(p) >= 64 {
		m := wordsLE(p[:64])
		d.block(&m)
		p = p[64:]
	}
	d.nbuf = copy(d.buf[:], p)
	return total, nil
}

// Sum appends the hash to b; d itself is unchanged, so writing may go on.
func (d *streebog) Sum(b []byte) []byte {
	c := *d
	// The last, partial block: the message bytes, then 0x01, then zeros (RFC 6986 section 8.3).
	var last [64]byte
	copy(last[:], c.buf[:c.nbuf])
	last[c.nbuf] = 1
	m := wordsLE(last[:])
	streebogG(&c.h, &c.n, &m)
	add512(&c.n, &[8]uint64{uint64(8 * c.nbuf)})
	add512(&c.sigma, &m)
	var zero [8]uint64
	streebogG(&c.h, &zero, &c.n)
	streebogG(&c.h, &zero, &c.sigma)
	var out [64]byte
	for i, w := range c.h {
		binary.LittleEndian.PutUint64(out[8*i:], w)
	}
	// The 256-bit result is the most significant half: the upper 32 bytes.
	return append(b, out[64-c.size:]...)
}
