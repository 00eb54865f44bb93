package gost

// point is a projective point (X:Y:Z) on y^2 = x^3 + ax + b, coordinates in the Montgomery
// domain of the curve's prime field; the neutral element is (0:1:0).
type point struct{ x, y, z fe }

// add sets r = p + q with the complete addition formulas of Renes, Costello and Batina
// ("Complete addition formulas for prime order elliptic curves", 2016, Algorithm 1, for any a).
// Complete means one formula for every pair, the neutral element and p == q included, so
// doubling is addition and the ladder below has no branch on the points. On the curves of
// cofactor 4 the formulas fail only for p - q of order 2, which never happens inside the
// subgroup of order q where all the ladder's points live (ParsePublicKey refuses keys outside it).
// r may alias p or q.
func (c *Curve) add(r, p, q *point) {
	f := c.fp
	var t0, t1, t2, t3, t4, t5, x3, y3, z3 fe
	f.mul(&t0, &p.x, &q.x) // 1
	f.mul(&t1, &p.y, &q.y)
	f.mul(&t2, &p.z, &q.z)
	f.add(&t3, &p.x, &p.y)
	f.add(&t4, &q.x, &q.y) // 5
	f.mul(&t3, &t3, &t4)
	f.add(&t4, &t0, &t1)
	f.sub(&t3, &t3, &t4)
	f.add(&t4, &p.x, &p.z)
	f.add(&t5, &q.x, &q.z) // 10
	f.mul(&t4, &t4, &t5)
	f.add(&t5, &t0, &t2)
	f.sub(&t4, &t4, &t5)
	f.add(&t5, &p.y, &p.z)
	f.add(&x3, &q.y, &q.z) // 15
	f.mul(&t5, &t5, &x3)
	f.add(&x3, &t1, &t2)
	f.sub(&t5, &t5, &x3)
	f.mul(&z3, &c.am, &t4)
	f.mul(&x3, &c.b3, &t2) // 20
	f.add(&z3, &x3, &z3)
	f.sub(&x3, &t1, &z3)
	f.add(&z3, &t1, &z3)
	f.mul(&y3, &x3, &z3)
	f.add(&t1, &t0, &t0) // 25
	f.add(&t1, &t1, &t0)
	f.mul(&t2, &c.am, &t2)
	f.mul(&t4, &c.b3, &t4)
	f.add(&t1, &t1, &t2)
	f.sub(&t2, &t0, &t2) // 30
	f.mul(&t2, &c.am, &t2)
	f.add(&t4, &t4, &t2)
	f.mul(&t0, &t1, &t4)
	f.add(&y3, &y3, &t0)
	f.mul(&t0, &t5, &t4) // 35
	f.mul(&x3, &t3, &x3)
	f.sub(&x3, &x3, &t0)
	f.mul(&t0, &t3, &t1)
	f.mul(&z3, &t5, &z3)
	f.add(&z3, &z3, &t0) // 40
	r.x, r.y, r.z = x3, y3, z3
}

// scalarMult sets r = k*p with a Montgomery ladder over all 64n bits of k (k < q, plain limbs,
// not Montgomery). Every step is one conditional swap, one addition and one doubling, whatever
// the bit: the time and the memory touched do not depend on k.
func (c *Curve) scalarMult(r *point, p *point, k *fe) {
	r0 := point{y: c.fp.one} // the neutral element (0:1:0)
	r1 := *p
	for i := 64*c.fq.n - 1; i >= 0; i-- {
		bit := k[i/64] >> (i % 64) & 1
		cswapPoint(&r0, &r1, bit)
		c.add(&r1, &r0, &r1)
		c.add(&r0, &r0, &r0)
		cswapPoint(&r0, &r1, bit)
	}
	*r = r0
}

// baseWindow is the width in bits of the digits scalarBaseMult reads a scalar in, and baseDigits
// the values a digit takes. Four bits: 16 points per window, 2,048 for a 512-bit q (about 400 KB
// per curve, made once), and a quarter of the ladder's 2 additions per bit.
const (
	baseWindow = 4
	baseDigits = 1 << baseWindow
)

// baseTable returns, for each window i of a scalar of q's width, the points j·2^(4i)·G for
// j = 0..15 (j = 0 the neutral element), made on the first call. Everything in it is public.
func (c *Curve) baseTable() [][baseDigits]point {
	c.baseOnce.Do(func() {
		windows := 64 * c.fq.n / baseWindow
		c.base = make([][baseDigits]point, windows)
		step := c.g // 2^(4i)·G for the window being filled
		for i := range c.base {
			row := &c.base[i]
			row[0] = point{y: c.fp.one}
			row[1] = step
			for j := 2; j < baseDigits; j++ {
				c.add(&row[j], &row[j-1], &step)
			}
			c.add(&step, &row[baseDigits-1], &step)
		}
	})
	return c.base
}

// scalarBaseMult sets r = k*G (k < 2^(64n), plain limbs) from the table of multiples of G: one
// complete addition per 4-bit digit of k, with the digit's point taken by a scan of the whole
// row that selects with masks. Like scalarMult, the instructions run and the memory touched do
// not depend on k; signing, which multiplies G by a secret nonce, spends most of its time here.
func (c *Curve) scalarBaseMult(r *point, k *fe) {
	table := c.baseTable()
	acc := point{y: c.fp.one}
	var sel point
	for i := range table {
		digit := k[i/(64/baseWindow)] >> (baseWindow * (i % (64 / baseWindow))) & (baseDigits - 1)
		sel = point{}
		for j := range table[i] {
			cmovPoint(&sel, &table[i][j], equalMask(uint64(j), digit))
		}
		c.add(&acc, &acc, &sel)
	}
	*r = acc
}

// equalMask returns all ones if a == b and 0 otherwise, without branching.
func equalMask(a, b uint64) uint64 {
	d := a ^ b
	// d|-d has its top bit set exactly when d != 0.
	return (d|-d)>>63 - 1
}

// cmovPoint sets a = b where mask is all ones and leaves it where mask is 0.
func cmovPoint(a, b *point, mask uint64) {
	for j := range a.x {
		a.x[j] ^= (a.x[j] ^ b.x[j]) & mask
		a.y[j] ^= (a.y[j] ^ b.y[j]) & mask
		a.z[j] ^= (a.z[j] ^ b.z[j]) & mask
	}
}

func cswapPoint(a, b *point, bit uint64) {
	cswap(&a.x, &b.x, bit)
	cswap(&a.y, &b.y, bit)
	cswap(&a.z, &b.z, bit)
}

// affine returns the plain (non-Montgomery) affine coordinates of p, and ok = 0 for the
// neutral element. The inversion is constant time; the caller decides what it may reveal.
func (c *Curve) affine(p *point) (x, y fe, ok uint64) {
	f := c.fp
	var zi fe
	f.inv(&zi, &p.z)
	f.mul(&x, &p.x, &zi)
	f.mul(&y, &p.y, &zi)
	f.fromMont(&x, &x)
	f.fromMont(&y, &y)
	return x, y, 1 ^ f.isZero(&p.z)
}
