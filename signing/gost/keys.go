package gost

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// PublicKey is a point of a curve's subgroup of order q, checked when it was made.
type PublicKey struct {
	curve *Curve
	x, y  *big.Int
	pt    point // (x:y:1) in the Montgomery domain
}

// NewPublicKey checks that (x, y) is a point of c other than the neutral element and that
// it lies in the subgroup of order q (which takes a scalar multiplication on the curves of
// cofactor 4), and returns it as a key.
func NewPublicKey(c *Curve, x, y *big.Int) (*PublicKey, error) {
	if c == nil || x == nil || y == nil {
		return nil, errors.New("gost: nil curve or coordinate")
	}
	if !c.onCurve(x, y) {
		return nil, fmt.Errorf("gost: public key is not a point of %s", c.name)
	}
	k := &PublicKey{curve: c, x: new(big.Int).Set(x), y: new(big.Int).Set(y)}
	px, py := feFromBig(x), feFromBig(y)
	c.fp.toMont(&k.pt.x, &px)
	c.fp.toMont(&k.pt.y, &py)
	k.pt.z = c.fp.one
	if c.cofactor != 1 {
		// q*Q must be the neutral element: a point with a small-order component would
		// otherwise reach the exceptional cases of the addition formulas. The key is public,
		// so the check runs on verification's variable-time multiplication (whose exceptional
		// cases are handled), not on the signing ladder, which took twice a verification's
		// time and was paid for every certificate a request carries.
		if _, notNeutral := c.verifyMult(new(big.Int), c.q, &k.pt); notNeutral {
			return nil, fmt.Errorf("gost: public key is not in the subgroup of order q of %s", c.name)
		}
	}
	return k, nil
}

// Curve returns the key's parameter set.
func (k *PublicKey) Curve() *Curve { return k.curve }

// Point returns copies of the key's affine coordinates.
func (k *PublicKey) Point() (x, y *big.Int) {
	return new(big.Int).Set(k.x), new(big.Int).Set(k.y)
}

// Equal reports whether x is a *PublicKey of the same curve and point (crypto.PublicKey's
// optional method, used by crypto/x509 and crypto/tls).
func (k *PublicKey) Equal(x crypto.PublicKey) bool {
	o, ok := x.(*PublicKey)
	return ok && o.curve == k.curve && o.x.Cmp(k.x) == 0 && o.y.Cmp(k.y) == 0
}

// PrivateKey is a GOST R 34.10-2012 signing key. It implements crypto.Signer; the scalar d is
// kept in fixed-width limbs and used only by constant-time arithmetic. Keys, public keys and
// curves are immutable and safe for concurrent use.
type PrivateKey struct {
	pub PublicKey
	d   fe // 0 < d < q, plain
	dm  fe // d in the Montgomery domain of q
}

// GenerateKey makes a key on c with randomness from rnd (crypto/rand.Reader when nil).
func GenerateKey(c *Curve, rnd io.Reader) (*PrivateKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	buf := make([]byte, c.size)
	for range 100 {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return nil, fmt.Errorf("gost: reading randomness: %w", err)
		}
		maskTop(buf, c.q.BitLen())
		if k, err := NewPrivateKey(c, buf); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("gost: no valid private key from 100 draws: the random source is broken")
}

// NewPrivateKey makes a key from its scalar d, big-endian, exactly c.Size() bytes, with
// 0 < d < q. The range check does not branch on d's value, only on its verdict.
func NewPrivateKey(c *Curve, d []byte) (*PrivateKey, error) {
	if c == nil {
		return nil, errors.New("gost: nil curve")
	}
	if len(d) != c.size {
		return nil, fmt.Errorf("gost: private key of %d bytes for %s, want %d", len(d), c.name, c.size)
	}
	k := &PrivateKey{d: feFromBytesBE(d)}
	if c.fq.less(&k.d)&(1^c.fq.isZero(&k.d)) != 1 {
		return nil, errors.New("gost: private key out of range (0 < d < q)")
	}
	c.fq.toMont(&k.dm, &k.d)
	var q point
	c.scalarBaseMult(&q, &k.d)
	x, y, _ := c.affine(&q)
	// The public key is public: leaving the constant-time domain here reveals nothing.
	k.pub = PublicKey{curve: c, x: c.fp.toBig(&x), y: c.fp.toBig(&y)}
	c.fp.toMont(&k.pub.pt.x, &x)
	c.fp.toMont(&k.pub.pt.y, &y)
	k.pub.pt.z = c.fp.one
	return k, nil
}

// maskTop clears the bits of a big-endian buffer above the lowest n.
func maskTop(b []byte, n int) {
	extra := 8*len(b) - n
	for i := 0; i < extra/8; i++ {
		b[i] = 0
	}
	if extra%8 != 0 {
		b[extra/8] &= 0xff >> (extra % 8)
	}
}

// Bytes returns d big-endian, c.Size() bytes.
func (k *PrivateKey) Bytes() []byte { return k.d.bytesBE(k.pub.curve.size) }

// Curve returns the key's parameter set.
func (k *PrivateKey) Curve() *Curve { return k.pub.curve }

// PublicKey returns the key's public half.
func (k *PrivateKey) PublicKey() *PublicKey { return &k.pub }

// Public returns the key's public half as a *PublicKey (crypto.Signer).
func (k *PrivateKey) Public() crypto.PublicKey { return &k.pub }

// Equal reports whether x is a *PrivateKey with the same curve and scalar, in constant time.
func (k *PrivateKey) Equal(x crypto.PrivateKey) bool {
	o, ok := x.(*PrivateKey)
	return ok && o.pub.curve == k.pub.curve && subtle.ConstantTimeCompare(o.Bytes(), k.Bytes()) == 1
}

// SignerOpts chooses the byte convention of PrivateKey.Sign. GOST hashes have no crypto.Hash
// value, so HashFunc returns 0: the digest is always computed by the caller.
type SignerOpts struct {
	Convention Convention
}

// HashFunc returns 0 (crypto.SignerOpts).
func (SignerOpts) HashFunc() crypto.Hash { return 0 }

// Sign signs a digest the caller computed (Streebog-256/512 or GOST R 34.11-94 as the key's
// algorithm demands; len(digest) must be Curve().Size()) and returns the signature in the
// convention of opts when it is a SignerOpts or *SignerOpts, and in the Kazakh convention
// otherwise (nil included). The nonce comes from rnd (crypto/rand.Reader when nil), hedged
// with the key and the digest. It implements crypto.Signer.
func (k *PrivateKey) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	conv := Kazakh
	switch o := opts.(type) {
	case SignerOpts:
		conv = o.Convention
	case *SignerOpts:
		if o != nil {
			conv = o.Convention
		}
	}
	return conv.Sign(rnd, k, digest)
}
