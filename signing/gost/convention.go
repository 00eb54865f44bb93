package gost

import (
	"fmt"
	"io"
	"math/big"
)

// Convention is how the bytes of a digest, a signature and a public key map to the integers
// of GOST R 34.10-2012. The standard writes every value as a number, most significant digit
// first, while hash implementations return their output least significant byte first, so
// real systems disagree on the order; each one names a convention here rather than reversing
// bytes by hand.
type Convention int

const (
	// Kazakh is the convention of НУЦ РК and Kalkan, for СТ РК ГОСТ Р 34.310-2004 and
	// GOST 34.10-2015 keys, established on real Kalkan signatures (issue 17): the digest as
	// the hash returns it, read as a little-endian integer; the signature r then s, each
	// little-endian; the public key X then Y, each little-endian. It is the zero value.
	Kazakh Convention = iota
	// BigEndian is RFC 7091's own notation, as its examples print the values: the digest read
	// as a big-endian integer, the signature r then s and the key X then Y, each big-endian.
	BigEndian
	// RFC4491 is the convention of RFC 4491 and RFC 9215 and of OpenSSL's GOST engine: the
	// digest read as a little-endian integer, the signature s then r, each big-endian, and the
	// key X then Y, each little-endian.
	RFC4491
)

func (v Convention) String() string {
	switch v {
	case Kazakh:
		return "Kazakh (LE digest, r||s LE, X||Y LE)"
	case BigEndian:
		return "BigEndian (RFC 7091 notation: BE digest, r||s BE, X||Y BE)"
	case RFC4491:
		return "RFC4491 (LE digest, s||r BE, X||Y LE)"
	}
	return fmt.Sprintf("Convention(%d)", int(v))
}

func (v Convention) check() error {
	if v < Kazakh || v > RFC4491 {
		return fmt.Errorf("gost: unknown convention %d", int(v))
	}
	return nil
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, x := range b {
		out[len(b)-1-i] = x
	}
	return out
}

// DigestInt is the digest read as an integer, not yet reduced mod q.
func (v Convention) DigestInt(digest []byte) *big.Int {
	if v == BigEndian {
		return new(big.Int).SetBytes(digest)
	}
	return new(big.Int).SetBytes(reversed(digest))
}

// fixed writes x in size bytes, big-endian or little-endian.
func fixed(x *big.Int, size int, little bool) []byte {
	b := x.FillBytes(make([]byte, size))
	if little {
		return reversed(b)
	}
	return b
}

// MarshalSignature encodes r and s (each below q) in 2*c.Size() bytes.
func (v Convention) MarshalSignature(c *Curve, r, s *big.Int) []byte {
	n := c.size
	switch v {
	case BigEndian:
		return append(fixed(r, n, false), fixed(s, n, false)...)
	case RFC4491:
		return append(fixed(s, n, false), fixed(r, n, false)...)
	default:
		return append(fixed(r, n, true), fixed(s, n, true)...)
	}
}

// ParseSignature decodes a signature of exactly 2*c.Size() bytes. It does not check the
// range of r and s: VerifyInt does.
func (v Convention) ParseSignature(c *Curve, sig []byte) (r, s *big.Int, err error) {
	if err := v.check(); err != nil {
		return nil, nil, err
	}
	n := c.size
	if len(sig) != 2*n {
		return nil, nil, fmt.Errorf("%w: signature of %d bytes for %s, want %d", ErrLength, len(sig), c.name, 2*n)
	}
	a, b := sig[:n], sig[n:]
	switch v {
	case BigEndian:
		return new(big.Int).SetBytes(a), new(big.Int).SetBytes(b), nil
	case RFC4491:
		return new(big.Int).SetBytes(b), new(big.Int).SetBytes(a), nil
	default:
		return new(big.Int).SetBytes(reversed(a)), new(big.Int).SetBytes(reversed(b)), nil
	}
}

// MarshalPublicKey encodes the key's X then Y in 2*Size() bytes: the content of the OCTET
// STRING inside a SubjectPublicKeyInfo's BIT STRING for Kazakh and RFC4491.
func (v Convention) MarshalPublicKey(k *PublicKey) []byte {
	n, little := k.curve.size, v != BigEndian
	return append(fixed(k.x, n, little), fixed(k.y, n, little)...)
}

// ParsePublicKey decodes X then Y (2*c.Size() bytes) and checks the point (NewPublicKey).
func (v Convention) ParsePublicKey(c *Curve, raw []byte) (*PublicKey, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	n := c.size
	if len(raw) != 2*n {
		return nil, fmt.Errorf("%w: public key of %d bytes for %s, want %d", ErrLength, len(raw), c.name, 2*n)
	}
	a, b := raw[:n], raw[n:]
	if v != BigEndian {
		a, b = reversed(a), reversed(b)
	}
	return NewPublicKey(c, new(big.Int).SetBytes(a), new(big.Int).SetBytes(b))
}

// Verify checks sig over digest with pub. The digest must be as long as a coordinate of the
// key's curve (32 or 64 bytes): a digest of another size is a hash the key was not made for.
func (v Convention) Verify(pub *PublicKey, digest, sig []byte) error {
	if len(digest) != pub.curve.size {
		return fmt.Errorf("%w: digest of %d bytes for %s, want %d", ErrLength, len(digest), pub.curve.name, pub.curve.size)
	}
	r, s, err := v.ParseSignature(pub.curve, sig)
	if err != nil {
		return err
	}
	return VerifyInt(pub, v.DigestInt(digest), r, s)
}

// Sign signs digest (Curve().Size() bytes) with k and encodes the signature; rnd as in
// PrivateKey.Sign.
func (v Convention) Sign(rnd io.Reader, k *PrivateKey, digest []byte) ([]byte, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	c := k.pub.curve
	if len(digest) != c.size {
		return nil, fmt.Errorf("%w: digest of %d bytes for %s, want %d", ErrLength, len(digest), c.name, c.size)
	}
	r, s, err := SignInt(rnd, k, v.DigestInt(digest))
	if err != nil {
		return nil, err
	}
	return v.MarshalSignature(c, r, s), nil
}
