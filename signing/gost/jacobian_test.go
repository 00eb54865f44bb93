package gost

import (
	"crypto/rand"
	"math/big"
	"testing"
)

// doubleScalarMult sets r = k1*G + k2*p by Straus's method over the complete formulas, as
// verification did before verifyMult: the reference verifyMult is held to.: one doubling per bit and one
// addition of G, p or G+p where the bits ask for it. It branches on the scalars, so it is
// for verification only, where k1, k2 and p are all public.
func (c *Curve) doubleScalarMult(r *point, k1, k2 *big.Int, p *point) {
	var gp point
	c.add(&gp, &c.g, p)
	acc := point{y: c.fp.one}
	for i := max(k1.BitLen(), k2.BitLen()) - 1; i >= 0; i-- {
		c.add(&acc, &acc, &acc)
		switch k1.Bit(i)<<1 | k2.Bit(i) {
		case 1:
			c.add(&acc, &acc, p)
		case 2:
			c.add(&acc, &acc, &c.g)
		case 3:
			c.add(&acc, &acc, &gp)
		}
	}
	*r = acc
}

// TestVerifyMultAgreesWithCompleteFormulas: the Jacobian verification arithmetic gives the same
// k1*G + k2*P as the complete formulas, for random scalars and keys on every curve, and in its
// exceptional cases: P = G (G+P a doubling), P = -G (G+P the neutral element), scalars of 0, 1
// and q-1, and a result that is the neutral element.
func TestVerifyMultAgreesWithCompleteFormulas(t *testing.T) {
	for _, c := range []*Curve{CurveCryptoProA(), CurveCryptoProB(), CurveTC26_256A(), CurveTC26_512A(), CurveTC26_512B()} {
		t.Run(c.Name(), func(t *testing.T) {
			check := func(what string, k1, k2 *big.Int, p *point) {
				t.Helper()
				var want point
				c.doubleScalarMult(&want, k1, k2, p)
				wx, _, wok := c.affine(&want)
				gx, gok := c.verifyMult(k1, k2, p)
				if (wok == 1) != gok || (gok && c.fp.toBig(&wx).Cmp(c.fp.toBig(&gx)) != 0) {
					t.Fatalf("%s: verifyMult = %v (%v), complete formulas = %v (%v)", what, c.fp.toBig(&gx), gok, c.fp.toBig(&wx), wok == 1)
				}
			}
			qm1 := new(big.Int).Sub(c.q, big.NewInt(1))
			for i := range 8 {
				k, err := GenerateKey(c, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				k1, _ := rand.Int(rand.Reader, c.q)
				k2, _ := rand.Int(rand.Reader, c.q)
				check("random", k1, k2, &k.pub.pt)
				if i == 0 {
					for _, ks := range [][2]*big.Int{{big.NewInt(0), k2}, {k1, big.NewInt(0)}, {big.NewInt(1), big.NewInt(1)}, {qm1, qm1}} {
						check("edge scalars", ks[0], ks[1], &k.pub.pt)
					}
				}
			}
			g := c.g
			check("P = G", big.NewInt(5), big.NewInt(7), &g)
			neg := c.g
			c.fp.sub(&neg.y, &fe{}, &c.g.y)
			check("P = -G", big.NewInt(5), big.NewInt(7), &neg)
			check("P = -G, equal scalars: the neutral element", big.NewInt(9), big.NewInt(9), &neg)
		})
	}
}

// TestInvPublicMatchesInv: the variable-time inverse verification uses gives what the
// constant-time one gives, 0 included, in every curve's field.
func TestInvPublicMatchesInv(t *testing.T) {
	for _, c := range allCurves {
		f := c.fp
		values := []fe{{}, f.one}
		for range 16 {
			k, _ := rand.Int(rand.Reader, f.mod)
			var x, plain fe
			plain = feFromBig(k)
			f.toMont(&x, &plain)
			values = append(values, x)
		}
		for _, x := range values {
			var want, got fe
			f.inv(&want, &x)
			f.invPublic(&got, &x)
			if got != want {
				t.Errorf("%s: invPublic(%x) = %x, inv gives %x", c, x, got, want)
			}
		}
	}
}
