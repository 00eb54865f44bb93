package gost

import (
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
)

func TestPKIXRoundTrip(t *testing.T) {
	cases := []struct {
		alg   KeyAlgorithm
		curve *Curve
	}{
		{KZ2004, curveCryptoProA}, {KZ2015_256, curveTC26_256A}, {KZ2015_512, curveTC26_512A},
		{TC26_256, curveCryptoProA}, {TC26_256, curveTC26_256A}, {TC26_256, curveCryptoProC},
		{TC26_512, curveTC26_512A}, {TC26_512, curveTC26_512C},
	}
	for _, tc := range cases {
		priv, _ := GenerateKey(tc.curve, nil)
		der, err := MarshalPKIXPublicKey(priv.PublicKey(), tc.alg)
		if err != nil {
			t.Fatalf("%v on %s: %v", tc.alg, tc.curve, err)
		}
		pub, alg, err := ParsePKIXPublicKey(der)
		if err != nil || alg != tc.alg || !pub.Equal(priv.Public()) {
			t.Fatalf("%v on %s: parsed back as %v, %v", tc.alg, tc.curve, alg, err)
		}
		if !tc.alg.Admits(tc.curve) || tc.alg.NewHash().Size() != tc.curve.Size() {
			t.Errorf("%v: curve or hash size disagree", tc.alg)
		}
	}
	// The private keys, in PKCS #8.
	for _, tc := range cases {
		priv, _ := GenerateKey(tc.curve, nil)
		der, err := MarshalPKCS8PrivateKey(priv, tc.alg)
		if err != nil {
			t.Fatalf("%v on %s: PKCS #8: %v", tc.alg, tc.curve, err)
		}
		back, alg, err := ParsePKCS8PrivateKey(der)
		if err != nil || alg != tc.alg || !back.Equal(priv) {
			t.Fatalf("%v on %s: PKCS #8 parsed back as %v, %v", tc.alg, tc.curve, alg, err)
		}
	}
	// The Kazakh parameters exactly as issue 17 records them.
	priv, _ := GenerateKey(curveTC26_512A, nil)
	der, _ := MarshalPKIXPublicKey(priv.PublicKey(), KZ2015_512)
	info, params := decodeSPKI(t, der)
	if info.Algorithm.Algorithm.String() != "1.2.398.3.10.1.1.2.2" ||
		params.PublicKeyParamSet.String() != "1.2.398.3.10.1.1.2.2.1" || params.DigestParamSet.String() != "1.2.398.3.10.1.3.3" {
		t.Errorf("KZ2015_512 SPKI: %s %+v", info.Algorithm.Algorithm, params)
	}
	if KZ2015_512.SignatureOID().String() != "1.2.398.3.10.1.1.2.3.2" || KZ2004.SignatureOID().String() != "1.2.398.3.10.1.1.1.2" {
		t.Error("Kazakh signature OIDs changed")
	}
	p2004, _ := GenerateKey(curveCryptoProA, nil)
	der, _ = MarshalPKIXPublicKey(p2004.PublicKey(), KZ2004)
	info, params = decodeSPKI(t, der)
	if info.Algorithm.Algorithm.String() != "1.2.398.3.10.1.1.1.1" ||
		params.PublicKeyParamSet.String() != "1.2.398.3.10.1.1.1.1.1" || params.DigestParamSet.String() != "1.2.398.3.10.1.3.1.1.0" {
		t.Errorf("KZ2004 SPKI: %s %+v", info.Algorithm.Algorithm, params)
	}
}

func decodeSPKI(t *testing.T, der []byte) (subjectPublicKeyInfo, keyParams) {
	t.Helper()
	var info subjectPublicKeyInfo
	var params keyParams
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	return info, params
}

// spki builds a SubjectPublicKeyInfo by hand, so that it can be wrong in every way.
func spki(t *testing.T, alg string, params any, key []byte) []byte {
	t.Helper()
	algOID, _ := parseOID(alg)
	ai := pkix.AlgorithmIdentifier{Algorithm: algOID}
	if params != nil {
		p, err := asn1.Marshal(params)
		if err != nil {
			t.Fatal(err)
		}
		ai.Parameters = asn1.RawValue{FullBytes: p}
	}
	k, _ := asn1.Marshal(key)
	der, err := asn1.Marshal(subjectPublicKeyInfo{Algorithm: ai, PublicKey: asn1.BitString{Bytes: k, BitLength: 8 * len(k)}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func oid(s string) asn1.ObjectIdentifier { o, _ := parseOID(s); return o }

func TestHostileKeys(t *testing.T) {
	p512, _ := GenerateKey(curveTC26_512A, nil)
	p256, _ := GenerateKey(curveCryptoProA, nil)
	key512 := Kazakh.MarshalPublicKey(p512.PublicKey())
	key256 := Kazakh.MarshalPublicKey(p256.PublicKey())
	kz512 := keyParams{PublicKeyParamSet: oid("1.2.398.3.10.1.1.2.2.1"), DigestParamSet: oid("1.2.398.3.10.1.3.3")}
	kz2004 := keyParams{PublicKeyParamSet: oid("1.2.398.3.10.1.1.1.1.1"), DigestParamSet: oid("1.2.398.3.10.1.3.1.1.0")}
	offCurve := append([]byte(nil), key512...)
	offCurve[0] ^= 1
	bigX := append(reversed(curveCryptoProA.p.FillBytes(make([]byte, 32))), key256[32:]...)

	if _, _, err := ParsePKIXPublicKey(spki(t, "1.2.398.3.10.1.1.2.2", kz512, key512)); err != nil {
		t.Fatalf("the valid key: %v", err)
	}
	for name, der := range map[string][]byte{
		"point not on the curve":        spki(t, "1.2.398.3.10.1.1.2.2", kz512, offCurve),
		"coordinate not below p":        spki(t, "1.2.398.3.10.1.1.1.1", kz2004, bigX),
		"2015 algorithm, 2004 curve":    spki(t, "1.2.398.3.10.1.1.2.2", kz2004, key256),
		"2004 algorithm, 2015 curve":    spki(t, "1.2.398.3.10.1.1.1.1", kz512, key512),
		"2004 key of 128 bytes":         spki(t, "1.2.398.3.10.1.1.1.1", kz2004, key512),
		"2015 key of 64 bytes":          spki(t, "1.2.398.3.10.1.1.2.2", kz512, key256),
		"2015 key one byte short":       spki(t, "1.2.398.3.10.1.1.2.2", kz512, key512[:127]),
		"wrong digest parameters":       spki(t, "1.2.398.3.10.1.1.2.2", keyParams{PublicKeyParamSet: oid("1.2.398.3.10.1.1.2.2.1"), DigestParamSet: oid("1.2.398.3.10.1.3.2")}, key512),
		"no parameters":                 spki(t, "1.2.398.3.10.1.1.2.2", nil, key512),
		"Russian 512 OID, 256 curve":    spki(t, "1.2.643.7.1.1.1.2", keyParams{PublicKeyParamSet: oid("1.2.643.2.2.35.1")}, key256),
		"test curve of RFC 7091":        spki(t, "1.2.643.7.1.1.1.1", keyParams{PublicKeyParamSet: oid("1.2.643.2.2.35.0")}, key256),
		"RSA algorithm":                 spki(t, "1.2.840.113549.1.1.1", nil, key256),
		"trailing data":                 append(spki(t, "1.2.398.3.10.1.1.2.2", kz512, key512), 0),
		"parameters of the wrong shape": spki(t, "1.2.398.3.10.1.1.2.2", oid("1.2.398.3.10.1.1.2.2.1"), key512),
	} {
		if _, _, err := ParsePKIXPublicKey(der); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := MarshalPKIXPublicKey(p256.PublicKey(), KZ2015_512); err == nil {
		t.Error("a CryptoPro-A key marshalled as a 2015 512-bit key")
	}
}

// On the curves of cofactor 4 a point of the curve may lie outside the subgroup of order q;
// such a key is refused, and exactly those.
func TestSmallSubgroupKeysRefused(t *testing.T) {
	for _, c := range []*Curve{curveTC26_256A, curveTC26_512C} {
		refused := 0
		for range 12 {
			x, y := randomCurvePoint(c)
			inSubgroup := refMul(c, c.q, []*big.Int{x, y}) == nil
			_, err := NewPublicKey(c, x, y)
			if (err == nil) != inSubgroup {
				t.Fatalf("%s: in subgroup %v, NewPublicKey: %v", c, inSubgroup, err)
			}
			if err != nil {
				refused++
			}
		}
		if refused == 0 {
			t.Errorf("%s: 12 random points all in the subgroup: the test proves nothing", c)
		}
	}
}

func randomCurvePoint(c *Curve) (x, y *big.Int) {
	for {
		x, _ = rand.Int(rand.Reader, c.p)
		rhs := new(big.Int).Mul(x, x)
		rhs.Add(rhs, c.a).Mul(rhs, x).Add(rhs, c.b).Mod(rhs, c.p)
		if y = new(big.Int).ModSqrt(rhs, c.p); y != nil {
			return x, y
		}
	}
}

func TestHostileSignatures(t *testing.T) {
	for _, c := range []*Curve{curveCryptoProA, curveTC26_512A} {
		priv, _ := GenerateKey(c, nil)
		pub := priv.PublicKey()
		digest := make([]byte, c.Size())
		rand.Read(digest)
		r, s, err := SignInt(nil, priv, Kazakh.DigestInt(digest))
		if err != nil {
			t.Fatal(err)
		}
		alpha := Kazakh.DigestInt(digest)
		if err := VerifyInt(pub, alpha, r, s); err != nil {
			t.Fatal(err)
		}
		q := c.q
		qPlus := func(d int64) *big.Int { return new(big.Int).Add(q, big.NewInt(d)) }
		for name, rs := range map[string][2]*big.Int{
			"r = 0":     {big.NewInt(0), s},
			"s = 0":     {r, big.NewInt(0)},
			"r = q":     {q, s},
			"s = q":     {r, q},
			"r = q + r": {new(big.Int).Add(q, r), s},
			"s = q + s": {r, new(big.Int).Add(s, q)},
			"r < 0":     {new(big.Int).Neg(r), s},
			"s = q+1":   {r, qPlus(1)},
		} {
			if err := VerifyInt(pub, alpha, rs[0], rs[1]); !errors.Is(err, ErrSignatureRange) {
				t.Errorf("%s %s: %v", c, name, err)
			}
			// The same through the bytes, where they fit.
			if rs[0].Sign() >= 0 && rs[0].BitLen() <= 8*c.Size() && rs[1].BitLen() <= 8*c.Size() {
				if err := Kazakh.Verify(pub, digest, Kazakh.MarshalSignature(c, rs[0], rs[1])); !errors.Is(err, ErrSignatureRange) {
					t.Errorf("%s %s as bytes: %v", c, name, err)
				}
			}
		}
		sig := Kazakh.MarshalSignature(c, r, s)
		for name, tc := range map[string]struct{ digest, sig []byte }{
			"signature one byte short":   {digest, sig[:len(sig)-1]},
			"signature one byte long":    {digest, append(append([]byte(nil), sig...), 0)},
			"digest of the other length": {make([]byte, 96-c.Size()), sig},
			"r and s swapped":            {digest, append(append([]byte(nil), sig[c.Size():]...), sig[:c.Size()]...)},
			"big-endian bytes":           {digest, BigEndian.MarshalSignature(c, r, s)},
		} {
			if err := Kazakh.Verify(pub, tc.digest, tc.sig); err == nil {
				t.Errorf("%s %s: accepted", c, name)
			}
		}
		// A valid signature under another key of the same curve, and of the other curve.
		other, _ := GenerateKey(c, nil)
		if err := Kazakh.Verify(other.PublicKey(), digest, sig); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: verified under another key: %v", c, err)
		}
	}
}

func TestUnknownKeyAlgorithm(t *testing.T) {
	var a KeyAlgorithm
	if a.OID() != nil || a.SignatureOID() != nil || a.DigestOID() != nil || a.NewHash() != nil || a.Admits(curveCryptoProA) {
		t.Error("the zero KeyAlgorithm answers like a real one")
	}
	if _, err := MarshalPKIXPublicKey(nil, a); err == nil {
		t.Error("marshalled with no algorithm")
	}
	if _, _, err := Convention(7).ParseSignature(curveCryptoProA, make([]byte, 64)); err == nil {
		t.Error("an unknown convention parsed a signature")
	}
}

func TestHostilePKCS8(t *testing.T) {
	priv, _ := GenerateKey(curveTC26_512A, nil)
	der, _ := MarshalPKCS8PrivateKey(priv, KZ2015_512)
	var info pkcs8
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		t.Fatal(err)
	}
	remarshal := func(mod func(*pkcs8)) []byte {
		c := info
		mod(&c)
		b, err := asn1.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	d := reversed(priv.Bytes())
	octets := func(b []byte) []byte { x, _ := asn1.Marshal(b); return x }
	q := reversed(curveTC26_512A.q.FillBytes(make([]byte, 64)))
	ai2004, _ := algorithmIdentifier(curveCryptoProA, KZ2004)
	for name, b := range map[string][]byte{
		"version 1":             remarshal(func(c *pkcs8) { c.Version = 1 }),
		"d one byte short":      remarshal(func(c *pkcs8) { c.PrivateKey = octets(d[:63]) }),
		"d = q":                 remarshal(func(c *pkcs8) { c.PrivateKey = octets(q) }),
		"d = 0":                 remarshal(func(c *pkcs8) { c.PrivateKey = octets(make([]byte, 64)) }),
		"2004 algorithm, 512 d": remarshal(func(c *pkcs8) { c.Algorithm = ai2004 }),
		"garbage":               remarshal(func(c *pkcs8) { c.PrivateKey = []byte{1, 2, 3} }),
		"trailing data":         append(append([]byte(nil), der...), 0),
	} {
		if _, _, err := ParsePKCS8PrivateKey(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// The raw form of OpenSSL's GOST engine and the INTEGER form of RFC 4491.
	for name, b := range map[string][]byte{
		"raw":     remarshal(func(c *pkcs8) { c.PrivateKey = d }),
		"INTEGER": remarshal(func(c *pkcs8) { x, _ := asn1.Marshal(new(big.Int).SetBytes(priv.Bytes())); c.PrivateKey = x }),
	} {
		if k, _, err := ParsePKCS8PrivateKey(b); err != nil || !k.Equal(priv) {
			t.Errorf("%s form: %v", name, err)
		}
	}
}
