package gost

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// Errors of verification. Verify wraps them with the detail; test with errors.Is.
var (
	// ErrSignature: the signature does not verify with the key.
	ErrSignature = errors.New("gost: signature does not verify")
	// ErrSignatureRange: r or s is not in [1, q-1] (GOST R 34.10-2012 section 6.2, step 1).
	ErrSignatureRange = errors.New("gost: signature r or s out of range")
	// ErrLength: a digest, signature or key of the wrong length for the curve.
	ErrLength = errors.New("gost: wrong length")
)

// reduce returns e = alpha mod q, and 1 when that is 0 (GOST R 34.10-2012 section 6.1, step 2).
func (c *Curve) reduce(alpha *big.Int) *big.Int {
	e := new(big.Int).Mod(alpha, c.q)
	if e.Sign() == 0 {
		e.SetInt64(1)
	}
	return e
}

// SignInt signs the integer alpha (the digest read as a number, by the caller's convention)
// and returns r and s (GOST R 34.10-2012 section 6.1; RFC 7091 section 6.1).
func SignInt(rnd io.Reader, k *PrivateKey, alpha *big.Int) (r, s *big.Int, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	c := k.pub.curve
	e := c.reduce(alpha)
	for attempt := range 100 {
		nonce, err := k.nonce(rnd, e, attempt)
		if err != nil {
			return nil, nil, err
		}
		if r, s, ok := k.signWithNonce(&nonce, e); ok {
			return r, s, nil
		}
	}
	return nil, nil, errors.New("gost: no signature after 100 nonces: the random source is broken")
}

// nonce draws k in [1, q-1]: 64 bytes from rnd hashed with the key, e and the attempt number
// (so a weak or repeating rnd still gives distinct nonces for distinct messages), cut to q's
// bit length, and rejected when not below q. SHA-512 is the standard library's constant-time
// code, not a table-driven GOST hash, because d passes through it.
func (k *PrivateKey) nonce(rnd io.Reader, e *big.Int, attempt int) (fe, error) {
	c := k.pub.curve
	var seed [64]byte
	buf := make([]byte, 0, 128)
	for draw := 0; ; draw++ {
		if _, err := io.ReadFull(rnd, seed[:]); err != nil {
			return fe{}, fmt.Errorf("gost: reading randomness: %w", err)
		}
		h := sha512.New()
		h.Write([]byte("siobroker/signing/gost nonce\x00"))
		h.Write(k.d.bytesBE(c.size))
		h.Write(e.FillBytes(make([]byte, c.size)))
		h.Write([]byte{byte(attempt), byte(draw)})
		h.Write(seed[:])
		buf = h.Sum(buf[:0])
		cand := buf[:c.size]
		maskTop(cand, c.q.BitLen())
		n := feFromBytesBE(cand)
		// Whether a candidate is refused says nothing of the one that is kept.
		if c.fq.less(&n)&(1^c.fq.isZero(&n)) == 1 {
			return n, nil
		}
		if draw > 200 {
			return fe{}, errors.New("gost: no nonce below q after 200 draws")
		}
	}
}

// signWithNonce computes r = x(kG) mod q and s = (r*d + k*e) mod q with constant-time
// arithmetic on d and k; ok is false when r or s is 0 and another nonce must be drawn.
// Tests call it with the fixed nonces of RFC 7091.
func (k *PrivateKey) signWithNonce(nonce *fe, e *big.Int) (r, s *big.Int, ok bool) {
	c := k.pub.curve
	var pt point
	c.scalarBaseMult(&pt, nonce)
	x, _, _ := c.affine(&pt)
	// r is published with the signature; reducing it with math/big reveals nothing more.
	r = new(big.Int).Mod(c.fp.toBig(&x), c.q)
	if r.Sign() == 0 {
		return nil, nil, false
	}
	fq := c.fq
	rf, ef := feFromBig(r), feFromBig(e)
	var rm, em, km, t1, t2 fe
	fq.toMont(&rm, &rf)
	fq.toMont(&em, &ef)
	fq.toMont(&km, nonce)
	fq.mul(&t1, &rm, &k.dm)
	fq.mul(&t2, &km, &em)
	fq.add(&t1, &t1, &t2)
	fq.fromMont(&t1, &t1)
	s = fq.toBig(&t1)
	if s.Sign() == 0 {
		return nil, nil, false
	}
	return r, s, true
}

// VerifyInt checks r and s over the integer alpha (GOST R 34.10-2012 section 6.2; RFC 7091
// section 6.2). It returns nil, or an error wrapping ErrSignatureRange or ErrSignature.
// Everything here is public, so it uses math/big for the scalars and a variable-time
// double-scalar multiplication.
func VerifyInt(pub *PublicKey, alpha, r, s *big.Int) error {
	c := pub.curve
	if r == nil || s == nil || r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(c.q) >= 0 || s.Cmp(c.q) >= 0 {
		return ErrSignatureRange
	}
	e := c.reduce(alpha)
	v := new(big.Int).ModInverse(e, c.q)
	z1 := new(big.Int).Mul(s, v)
	z1.Mod(z1, c.q)
	z2 := new(big.Int).Sub(c.q, r)
	z2.Mul(z2, v)
	z2.Mod(z2, c.q)
	x, ok := c.verifyMult(z1, z2, &pub.pt)
	if !ok {
		return ErrSignature
	}
	if new(big.Int).Mod(c.fp.toBig(&x), c.q).Cmp(r) != 0 {
		return ErrSignature
	}
	return nil
}
