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
