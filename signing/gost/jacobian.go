package gost

import "math/big"

// Verification works on public values only (the public key, the signature, the digest), so it may
// branch on them: it uses Jacobian coordinates, with the doubling "dbl-2007-bl" and the mixed
// addition "madd-2007-bl" of the Explicit-Formulas Database (Bernstein and Lange,
// https://hyperelliptic.org/EFD/g1p/auto-shortw-jacobian.html), which cost about 10 and 11 field
// multiplications against the 17 of the complete formulas that signing needs for constant time.
// Their exceptional cases (the neutral element, equal or opposite points) are tested for and
// handled here, which the complete formulas do not need.

// jpoint is a Jacobian point (X:Y:Z) in the Montgomery domain of p, (X/Z², Y/Z³) in affine
// coordinates; Z = 0 is the neutral element.
type jpoint struct{ x, y, z fe }

// apoint is an affine point (x, y) in the Montgomery domain; inf marks the neutral element.
type apoint struct {
	x, y fe
	inf  bool
}

// jdouble sets r = 2p (dbl-2007-bl, any a). r may alias p.
func (c *Curve) jdouble(r, p *jpoint) {
	f := c.fp
	if f.isZero(&p.z) == 1 || f.isZero(&p.y) == 1 {
		// The neutral element, or a point of order 2 (none in the subgroup of order q): 2p = 0.
		*r = jpoint{x: f.one, y: f.one}
		return
	}
	var xx, yy, yyyy, zz, s, m, t, tmp fe
	f.mul(&xx, &p.x, &p.x)
	f.mul(&yy, &p.y, &p.y)
	f.mul(&yyyy, &yy, &yy)
	f.mul(&zz, &p.z, &p.z)
	// S = 2*((X1+YY)^2-XX-YYYY)
	f.add(&s, &p.x, &yy)
	f.mul(&s, &s, &s)
	f.sub(&s, &s, &xx)
	f.sub(&s, &s, &yyyy)
	f.add(&s, &s, &s)
	// M = 3*XX+a*ZZ^2
	f.add(&m, &xx, &xx)
	f.add(&m, &m, &xx)
	f.mul(&tmp, &zz, &zz)
	f.mul(&tmp, &tmp, &c.am)
	f.add(&m, &m, &tmp)
	// T = M^2-2*S
	f.mul(&t, &m, &m)
	f.sub(&t, &t, &s)
	f.sub(&t, &t, &s)
	// Z3 = (Y1+Z1)^2-YY-ZZ, before Y1 is overwritten (r may alias p)
	var z3 fe
	f.add(&z3, &p.y, &p.z)
	f.mul(&z3, &z3, &z3)
	f.sub(&z3, &z3, &yy)
	f.sub(&z3, &z3, &zz)
	// Y3 = M*(S-T)-8*YYYY
	var y3 fe
	f.sub(&y3, &s, &t)
	f.mul(&y3, &m, &y3)
	f.add(&yyyy, &yyyy, &yyyy)
	f.add(&yyyy, &yyyy, &yyyy)
	f.add(&yyyy, &yyyy, &yyyy)
	f.sub(&y3, &y3, &yyyy)
	r.x, r.y, r.z = t, y3, z3
}

// jaddAffine sets r = p + q for q affine (madd-2007-bl), with the exceptional cases handled. r
// may alias p.
func (c *Curve) jaddAffine(r, p *jpoint, q *apoint) {
	f := c.fp
	if q.inf {
		*r = *p
		return
	}
	if f.isZero(&p.z) == 1 {
		*r = jpoint{x: q.x, y: q.y, z: f.one}
		return
	}
	var z1z1, u2, s2, h, hh, i, j, rr, v fe
	f.mul(&z1z1, &p.z, &p.z)
	f.mul(&u2, &q.x, &z1z1)
	f.mul(&s2, &q.y, &p.z)
	f.mul(&s2, &s2, &z1z1)
	f.sub(&h, &u2, &p.x)
	f.sub(&rr, &s2, &p.y)
	if f.isZero(&h) == 1 {
		if f.isZero(&rr) == 1 {
			c.jdouble(r, p) // p == q
			return
		}
		*r = jpoint{x: f.one, y: f.one} // p == -q
		return
	}
	f.mul(&hh, &h, &h)
	f.add(&i, &hh, &hh)
	f.add(&i, &i, &i)
	f.mul(&j, &h, &i)
	f.add(&rr, &rr, &rr)
	f.mul(&v, &p.x, &i)
	// X3 = r^2-J-2*V
	var x3, y3, z3, t fe
	f.mul(&x3, &rr, &rr)
	f.sub(&x3, &x3, &j)
	f.sub(&x3, &x3, &v)
	f.sub(&x3, &x3, &v)
	// Y3 = r*(V-X3)-2*Y1*J
	f.sub(&y3, &v, &x3)
	f.mul(&y3, &rr, &y3)
	f.mul(&t, &p.y, &j)
	f.add(&t, &t, &t)
	f.sub(&y3, &y3, &t)
	// Z3 = (Z1+H)^2-Z1Z1-HH
	f.add(&z3, &p.z, &h)
	f.mul(&z3, &z3, &z3)
	f.sub(&z3, &z3, &z1z1)
	f.sub(&z3, &z3, &hh)
	r.x, r.y, r.z = x3, y3, z3
}

// jaffine is p in affine coordinates (Montgomery domain). Only for public points: verification.
func (c *Curve) jaffine(p *jpoint) apoint {
	f := c.fp
	if f.isZero(&p.z) == 1 {
		return apoint{inf: true}
	}
	var zi, zi2, zi3 apoint
	f.invPublic(&zi.x, &p.z)
	f.mul(&zi2.x, &zi.x, &zi.x)
	f.mul(&zi3.x, &zi2.x, &zi.x)
	var out apoint
	f.mul(&out.x, &p.x, &zi2.x)
	f.mul(&out.y, &p.y, &zi3.x)
	return out
}

// verifyMult returns the plain affine x of k1*G + k2*P (Straus's method over Jacobian
// coordinates with the affine table G, P, G+P), and false for the neutral element. Public values
// only: it branches on the scalars and the points.
func (c *Curve) verifyMult(k1, k2 *big.Int, p *point) (fe, bool) {
	g := apoint{x: c.g.x, y: c.g.y}
	pa := apoint{x: p.x, y: p.y} // keys are kept with Z = 1
	gj := jpoint{x: g.x, y: g.y, z: c.fp.one}
	var gpj jpoint
	c.jaddAffine(&gpj, &gj, &pa)
	gp := c.jaffine(&gpj)
	acc := jpoint{x: c.fp.one, y: c.fp.one} // the neutral element
	for i := max(k1.BitLen(), k2.BitLen()) - 1; i >= 0; i-- {
		c.jdouble(&acc, &acc)
		switch k1.Bit(i)<<1 | k2.Bit(i) {
		case 1:
			c.jaddAffine(&acc, &acc, &pa)
		case 2:
			c.jaddAffine(&acc, &acc, &g)
		case 3:
			c.jaddAffine(&acc, &acc, &gp)
		}
	}
	a := c.jaffine(&acc)
	if a.inf {
		return fe{}, false
	}
	var x fe
	c.fp.fromMont(&x, &a.x)
	return x, true
}
