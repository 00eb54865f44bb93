package gost

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"math/big"
	"testing"
)

var _ crypto.Signer = (*PrivateKey)(nil)

var allCurves = []*Curve{curveTest256, curveTest512, curveCryptoProA, curveCryptoProB, curveCryptoProC,
	curveTC26_256A, curveTC26_512A, curveTC26_512B, curveTC26_512C}

// refAdd is affine addition in math/big, written from the textbook formulas and nothing else
// in this package: the reference the constant-time ladder is held to. nil is the neutral
// element.
func refAdd(c *Curve, p1, p2 []*big.Int) []*big.Int {
	if p1 == nil {
		return p2
	}
	if p2 == nil {
		return p1
	}
	p := c.p
	var l *big.Int
	if p1[0].Cmp(p2[0]) == 0 {
		if new(big.Int).Mod(new(big.Int).Add(p1[1], p2[1]), p).Sign() == 0 {
			return nil
		}
		// (3x^2 + a) / 2y
		num := new(big.Int).Mul(p1[0], p1[0])
		num.Mul(num, big.NewInt(3)).Add(num, c.a)
		den := new(big.Int).Lsh(p1[1], 1)
		l = num.Mul(num, den.ModInverse(den.Mod(den, p), p))
	} else {
		num := new(big.Int).Sub(p2[1], p1[1])
		den := new(big.Int).Sub(p2[0], p1[0])
		l = num.Mul(num, den.ModInverse(den.Mod(den, p), p))
	}
	l.Mod(l, p)
	x := new(big.Int).Mul(l, l)
	x.Sub(x, p1[0]).Sub(x, p2[0]).Mod(x, p)
	y := new(big.Int).Sub(p1[0], x)
	y.Mul(y, l).Sub(y, p1[1]).Mod(y, p)
	return []*big.Int{x, y}
}

func refMul(c *Curve, k *big.Int, pt []*big.Int) []*big.Int {
	var r []*big.Int
	for i := k.BitLen() - 1; i >= 0; i-- {
		r = refAdd(c, r, r)
		if k.Bit(i) == 1 {
			r = refAdd(c, r, pt)
		}
	}
	return r
}

func TestLadderMatchesReference(t *testing.T) {
	for _, c := range allCurves {
		g := []*big.Int{c.gx, c.gy}
		scalars := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(3),
			new(big.Int).Sub(c.q, big.NewInt(1)), new(big.Int).Set(c.q)}
		for range 2 {
			k, _ := rand.Int(rand.Reader, c.q)
			scalars = append(scalars, k)
		}
		for _, k := range scalars {
			var got point
			kf := feFromBig(k)
			c.scalarMult(&got, &c.g, &kf)
			x, y, ok := c.affine(&got)
			want := refMul(c, k, g)
			if want == nil {
				if ok != 0 {
					t.Errorf("%s: %v*G is not the neutral element", c, k)
				}
				continue
			}
			if ok != 1 || c.fp.toBig(&x).Cmp(want[0]) != 0 || c.fp.toBig(&y).Cmp(want[1]) != 0 {
				t.Errorf("%s: %v*G differs from the reference", c, k)
			}
		}
	}
}

// TestBaseMultMatchesLadder: the table of multiples of G gives what the ladder gives, for the
// edge scalars (0, 1, digits of every value, q-1, all bits of q's width set) and random ones, on
// every curve.
func TestBaseMultMatchesLadder(t *testing.T) {
	for _, c := range allCurves {
		width := 64 * c.fq.n
		allOnes := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(width)), big.NewInt(1))
		scalars := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(15), big.NewInt(16), big.NewInt(0x123456789abcdef),
			new(big.Int).Sub(c.q, big.NewInt(1)), new(big.Int).Set(c.q), allOnes}
		for range 8 {
			k, _ := rand.Int(rand.Reader, c.q)
			scalars = append(scalars, k)
		}
		for _, k := range scalars {
			kf := feFromBig(k)
			var byTable, byLadder point
			c.scalarBaseMult(&byTable, &kf)
			c.scalarMult(&byLadder, &c.g, &kf)
			x1, y1, ok1 := c.affine(&byTable)
			x2, y2, ok2 := c.affine(&byLadder)
			if ok1 != ok2 || x1 != x2 || y1 != y2 {
				t.Errorf("%s: %x·G by the table differs from the ladder", c, k)
			}
		}
	}
}

func TestSignVerifyEveryCurveAndConvention(t *testing.T) {
	for _, c := range allCurves {
		priv, err := GenerateKey(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, conv := range []Convention{Kazakh, BigEndian, RFC4491} {
			digest := make([]byte, c.Size())
			rand.Read(digest)
			sig, err := priv.Sign(nil, digest, SignerOpts{Convention: conv})
			if err != nil {
				t.Fatal(err)
			}
			if err := conv.Verify(priv.PublicKey(), digest, sig); err != nil {
				t.Errorf("%s %v: %v", c, conv, err)
			}
			digest[0] ^= 1
			if err := conv.Verify(priv.PublicKey(), digest, sig); !errors.Is(err, ErrSignature) {
				t.Errorf("%s %v: another digest: %v", c, conv, err)
			}
		}
		// A key rebuilt from its bytes is the same key.
		again, err := NewPrivateKey(c, priv.Bytes())
		if err != nil || !again.Equal(priv) || !again.PublicKey().Equal(priv.Public()) {
			t.Errorf("%s: key from Bytes differs (%v)", c, err)
		}
	}
}

// The digest is reduced mod q and 0 becomes 1 (GOST R 34.10-2012 section 6.1 step 2): a
// signature over a zero digest verifies over the digest q, and over 1.
func TestDigestZeroBecomesOne(t *testing.T) {
	for _, c := range []*Curve{curveCryptoProA, curveTC26_512A} {
		priv, _ := GenerateKey(c, nil)
		zero := make([]byte, c.Size())
		sig, err := Kazakh.Sign(nil, priv, zero)
		if err != nil {
			t.Fatal(err)
		}
		qLE := reversed(c.q.FillBytes(make([]byte, c.Size())))
		oneLE := reversed(big.NewInt(1).FillBytes(make([]byte, c.Size())))
		for name, d := range map[string][]byte{"zero": zero, "q": qLE, "one": oneLE} {
			if err := Kazakh.Verify(priv.PublicKey(), d, sig); err != nil {
				t.Errorf("%s: digest %s: %v", c, name, err)
			}
		}
	}
}

func TestPrivateKeyRange(t *testing.T) {
	c := curveCryptoProA
	for name, d := range map[string][]byte{
		"zero":  make([]byte, 32),
		"q":     c.q.FillBytes(make([]byte, 32)),
		"q+1":   new(big.Int).Add(c.q, big.NewInt(1)).FillBytes(make([]byte, 32)),
		"max":   bytes.Repeat([]byte{0xff}, 32),
		"short": {1, 2, 3},
	} {
		if _, err := NewPrivateKey(c, d); err == nil {
			t.Errorf("private key %s accepted", name)
		}
	}
	if _, err := NewPrivateKey(c, new(big.Int).Sub(c.q, big.NewInt(1)).FillBytes(make([]byte, 32))); err != nil {
		t.Errorf("q-1 refused: %v", err)
	}
}

// The nonce is hedged: the same digest signed twice gives two signatures, both valid.
func TestSignaturesDiffer(t *testing.T) {
	priv, _ := GenerateKey(curveTC26_512A, nil)
	d := make([]byte, 64)
	a, _ := Kazakh.Sign(nil, priv, d)
	b, _ := Kazakh.Sign(nil, priv, d)
	if bytes.Equal(a, b) {
		t.Fatal("two signatures of one digest are equal: the nonce repeats")
	}
}

// One key and one curve serve many goroutines (the broker signs replies concurrently); -race
// watches this.
func TestConcurrentUse(t *testing.T) {
	priv, _ := GenerateKey(curveCryptoProA, nil)
	digest := make([]byte, 32)
	done := make(chan error)
	for range 4 {
		go func() {
			sig, err := priv.Sign(nil, digest, nil)
			if err == nil {
				err = Kazakh.Verify(priv.PublicKey(), digest, sig)
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
