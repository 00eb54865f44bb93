package gost

import (
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
)

// Curve is a named parameter set of GOST R 34.10-2012: the curve y^2 = x^3 + ax + b over GF(p),
// its base point (x, y) of prime order q, and the cofactor. A Curve is immutable and shared;
// compare curves by pointer.
type Curve struct {
	name     string
	oid      asn1.ObjectIdentifier // the parameter set's OID in the Russian arc (RFC 4357, RFC 7836)
	p, q     *big.Int
	a, b     *big.Int
	gx, gy   *big.Int
	cofactor int64
	size     int // bytes of one coordinate, of q's residues and of r and s: 32 or 64

	fp, fq *field
	am     fe // a in the Montgomery domain of p
	b3     fe // 3b in the Montgomery domain of p
	g      point

	// base holds the multiples of g that scalarBaseMult adds, made on first use (baseTable).
	baseOnce sync.Once
	base     [][baseDigits]point
}

// Params are the numbers of a curve, copied: changing them changes nothing in the Curve.
type Params struct {
	P, Q, A, B, X, Y *big.Int
	Cofactor         int64
}

// Name is the parameter set's name as the RFCs write it.
func (c *Curve) Name() string { return c.name }

// OID is the parameter set's object identifier in the Russian arc (1.2.643...).
func (c *Curve) OID() asn1.ObjectIdentifier { return append(asn1.ObjectIdentifier(nil), c.oid...) }

// Size is the length in bytes of one coordinate and of one half of a signature: 32 or 64.
func (c *Curve) Size() int { return c.size }

// Params returns a copy of the curve's numbers.
func (c *Curve) Params() Params {
	cp := func(x *big.Int) *big.Int { return new(big.Int).Set(x) }
	return Params{P: cp(c.p), Q: cp(c.q), A: cp(c.a), B: cp(c.b), X: cp(c.gx), Y: cp(c.gy), Cofactor: c.cofactor}
}

func (c *Curve) String() string { return c.name }

func hexInt(s string) *big.Int {
	x, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("gost: bad constant " + s)
	}
	return x
}

func newCurve(name string, oid asn1.ObjectIdentifier, size int, p, a, b, q, x, y string, cofactor int64) *Curve {
	c := &Curve{
		name: name, oid: oid, size: size, cofactor: cofactor,
		p: hexInt(p), a: hexInt(a), b: hexInt(b), q: hexInt(q), gx: hexInt(x), gy: hexInt(y),
	}
	c.fp, c.fq = newField(c.p), newField(c.q)
	if c.fp.n*8 != size || c.q.BitLen() > 8*size {
		panic("gost: curve " + name + " does not fit its size")
	}
	a0 := feFromBig(c.a)
	c.fp.toMont(&c.am, &a0)
	b3 := feFromBig(new(big.Int).Mod(new(big.Int).Mul(c.b, big.NewInt(3)), c.p))
	c.fp.toMont(&c.b3, &b3)
	gx, gy := feFromBig(c.gx), feFromBig(c.gy)
	c.fp.toMont(&c.g.x, &gx)
	c.fp.toMont(&c.g.y, &gy)
	c.g.z = c.fp.one
	if !c.onCurve(c.gx, c.gy) {
		panic("gost: base point of " + name + " is not on the curve")
	}
	return c
}

// onCurve reports whether 0 <= x, y < p and y^2 = x^3 + ax + b (mod p). Public values only.
func (c *Curve) onCurve(x, y *big.Int) bool {
	if x.Sign() < 0 || y.Sign() < 0 || x.Cmp(c.p) >= 0 || y.Cmp(c.p) >= 0 {
		return false
	}
	rhs := new(big.Int).Mul(x, x)
	rhs.Add(rhs, c.a)
	rhs.Mul(rhs, x)
	rhs.Add(rhs, c.b)
	rhs.Mod(rhs, c.p)
	lhs := new(big.Int).Mul(y, y)
	lhs.Mod(lhs, c.p)
	return lhs.Cmp(rhs) == 0
}

// The parameter sets. The numbers are those of the RFCs named with each; a test compares them
// with the tables compiled into libgcrypt, an implementation nobody here wrote.
var (
	// id-GostR3410-2001-TestParamSet: the example curve of GOST R 34.10-2012 (RFC 7091
	// section 7.1). For tests only.
	curveTest256 = newCurve("id-GostR3410-2001-TestParamSet", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 0}, 32,
		"8000000000000000000000000000000000000000000000000000000000000431",
		"7",
		"5FBFF498AA938CE739B8E022FBAFEF40563F6E6A3472FC2A514C0CE9DAE23B7E",
		"8000000000000000000000000000000150FE8A1892976154C59CFC193ACCF5B3",
		"2",
		"08E2A8A0E65147D4BD6316030E16D19C85C97F0A9CA267122B96ABBCEA7E8FC8", 1)

	// The 512-bit example curve of GOST R 34.10-2012 (RFC 7091 section 7.2). For tests only.
	curveTest512 = newCurve("id-tc26-gost-3410-12-512-paramSetTest", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 0}, 64,
		"4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15DF1D852741AF4704A0458047E80E4546D35B8336FAC224DD81664BBF528BE6373",
		"7",
		"1CFF0806A31116DA29D8CFA54E57EB748BC5F377E49400FDD788B649ECA1AC4361834013B2AD7322480A89CA58E0CF74BC9E540C2ADD6897FAD0A3084F302ADC",
		"4531ACD1FE0023C7550D267B6B2FEE80922B14B2FFB90F04D4EB7C09B5D2D15DA82F2D7ECB1DBAC719905C5EECC423F1D86E25EDBE23C595D644AAF187E6E6DF",
		"24D19CC64572EE30F396BF6EBBFD7A6C5213B3B3D7057CC825F91093A68CD762FD60611262CD838DC6B60AA7EEE804E28BC849977FAC33B4B530F1B120248A9A",
		"2BB312A43BD2CE6E0D020613C857ACDDCFBF061E91E5F2C3F32447C259F39B2C83AB156D77F1496BF7EB3351E1EE4E43DC1A18B91B24640B6DBB92CB1ADD371E", 1)

	// id-GostR3410-2001-CryptoPro-A-ParamSet (RFC 4357 section 11.4); the same curve is
	// id-tc26-gost-3410-12-256-paramSetB (RFC 7836). Kazakh GOST 34.310-2004 keys use it.
	curveCryptoProA = newCurve("id-GostR3410-2001-CryptoPro-A-ParamSet", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 1}, 32,
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD94",
		"A6",
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF6C611070995AD10045841B09B761B893",
		"1",
		"8D91E471E0989CDA27DF505A453F2B7635294F2DDF23E3B122ACC99C9E9F1E14", 1)

	// id-GostR3410-2001-CryptoPro-B-ParamSet (RFC 4357 section 11.4) = tc26 256 paramSetC.
	curveCryptoProB = newCurve("id-GostR3410-2001-CryptoPro-B-ParamSet", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 2}, 32,
		"8000000000000000000000000000000000000000000000000000000000000C99",
		"8000000000000000000000000000000000000000000000000000000000000C96",
		"3E1AF419A269A5F866A7D3C25C3DF80AE979259373FF2B182F49D4CE7E1BBC8B",
		"800000000000000000000000000000015F700CFFF1A624E5E497161BCC8A198F",
		"1",
		"3FA8124359F96680B83D1C3EB2C070E5C545C9858D03ECFB744BF8D717717EFC", 1)

	// id-GostR3410-2001-CryptoPro-C-ParamSet (RFC 4357 section 11.4) = tc26 256 paramSetD.
	curveCryptoProC = newCurve("id-GostR3410-2001-CryptoPro-C-ParamSet", asn1.ObjectIdentifier{1, 2, 643, 2, 2, 35, 3}, 32,
		"9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D759B",
		"9B9F605F5A858107AB1EC85E6B41C8AACF846E86789051D37998F7B9022D7598",
		"805A",
		"9B9F605F5A858107AB1EC85E6B41C8AA582CA3511EDDFB74F02F3A6598980BB9",
		"0",
		"41ECE55743711A8C3CBF3783CD08C0EE4D4DC440D4641A8F366E550DFDB3BB67", 1)

	// id-tc26-gost-3410-2012-256-paramSetA (RFC 7836), a twisted Edwards curve written in
	// Weierstrass form; cofactor 4.
	curveTC26_256A = newCurve("id-tc26-gost-3410-12-256-paramSetA", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 1, 1}, 32,
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFD97",
		"C2173F1513981673AF4892C23035A27CE25E2013BF95AA33B22C656F277E7335",
		"295F9BAE7428ED9CCC20E7C359A9D41A22FCCD9108E17BF7BA9337A6F8AE9513",
		"400000000000000000000000000000000FD8CDDFC87B6635C115AF556C360C67",
		"91E38443A5E82C0D880923425712B2BB658B9196932E02C78B2582FE742DAA28",
		"32879423AB1A0375895786C4BB46E9565FDE0B5344766740AF268ADB32322E5C", 4)

	// id-tc26-gost-3410-12-512-paramSetA (RFC 7836); Kazakh GOST 34.10-2015 512-bit keys use it.
	curveTC26_512A = newCurve("id-tc26-gost-3410-12-512-paramSetA", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 1}, 64,
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC7",
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC4",
		"E8C2505DEDFC86DDC1BD0B2B6667F1DA34B82574761CB0E879BD081CFD0B6265EE3CB090F30D27614CB4574010DA90DD862EF9D4EBEE4761503190785A71C760",
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF27E69532F48D89116FF22B8D4E0560609B4B38ABFAD2B85DCACDB1411F10B275",
		"3",
		"7503CFE87A836AE3A61B8816E25450E6CE5E1C93ACF1ABC1778064FDCBEFA921DF1626BE4FD036E93D75E6A50E3A41E98028FE5FC235F5B889A589CB5215F2A4", 1)

	// id-tc26-gost-3410-12-512-paramSetB (RFC 7836).
	curveTC26_512B = newCurve("id-tc26-gost-3410-12-512-paramSetB", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 2}, 64,
		"8000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006F",
		"8000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006C",
		"687D1B459DC841457E3E06CF6F5E2517B97C7D614AF138BCBF85DC806C4B289F3E965D2DB1416D217F8B276FAD1AB69C50F78BEE1FA3106EFB8CCBC7C5140116",
		"800000000000000000000000000000000000000000000000000000000000000149A1EC142565A545ACFDB77BD9D40CFA8B996712101BEA0EC6346C54374F25BD",
		"2",
		"1A8F7EDA389B094C2C071E3647A8940F3C123B697578C213BE6DD9E6C8EC7335DCB228FD1EDF4A39152CBCAAF8C0398828041055F94CEEEC7E21340780FE41BD", 1)

	// id-tc26-gost-3410-2012-512-paramSetC (RFC 7836), a twisted Edwards curve in Weierstrass
	// form; cofactor 4.
	curveTC26_512C = newCurve("id-tc26-gost-3410-12-512-paramSetC", asn1.ObjectIdentifier{1, 2, 643, 7, 1, 2, 1, 2, 3}, 64,
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFDC7",
		"DC9203E514A721875485A529D2C722FB187BC8980EB866644DE41C68E143064546E861C0E2C9EDD92ADE71F46FCF50FF2AD97F951FDA9F2A2EB6546F39689BD3",
		"B4C4EE28CEBC6C2C8AC12952CF37F16AC7EFB6A9F69F4B57FFDA2E4F0DE5ADE038CBC2FFF719D2C18DE0284B8BFEF3B52B8CC7A5F5BF0A3C8D2319A5312557E1",
		"3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC98CDBA46506AB004C33A9FF5147502CC8EDA9E7A769A12694623CEF47F023ED",
		"E2E31EDFC23DE7BDEBE241CE593EF5DE2295B7A9CBAEF021D385F7074CEA043AA27272A7AE602BF2A7B9033DB9ED3610C6FB85487EAE97AAC5BC7928C1950148",
		"F5CE40D95B5EB899ABBCCFF5911CB8577939804D6527378B8C108C3D2090FF9BE18E2D33E3021ED2EF32D85822423B6304F726AA854BAE07D0396E9A9ADDC40F", 4)
)

// CurveCryptoProA is id-GostR3410-2001-CryptoPro-A-ParamSet (RFC 4357), the curve of Kazakh
// GOST 34.310-2004 keys (their parameter OID 1.2.398.3.10.1.1.1.1.1).
func CurveCryptoProA() *Curve { return curveCryptoProA }

// CurveCryptoProB is id-GostR3410-2001-CryptoPro-B-ParamSet (RFC 4357).
func CurveCryptoProB() *Curve { return curveCryptoProB }

// CurveCryptoProC is id-GostR3410-2001-CryptoPro-C-ParamSet (RFC 4357).
func CurveCryptoProC() *Curve { return curveCryptoProC }

// CurveTC26_256A is id-tc26-gost-3410-12-256-paramSetA (RFC 7836). Public Kazakh code names
// it as the curve of the 256-bit GOST 34.10-2015 keys (1.2.398.3.10.1.1.2.1.1); no signature
// has proven that here yet.
func CurveTC26_256A() *Curve { return curveTC26_256A }

// CurveTC26_512A is id-tc26-gost-3410-12-512-paramSetA (RFC 7836), the curve of Kazakh
// GOST 34.10-2015 512-bit keys (their parameter OID 1.2.398.3.10.1.1.2.2.1).
func CurveTC26_512A() *Curve { return curveTC26_512A }

// CurveTC26_512B is id-tc26-gost-3410-12-512-paramSetB (RFC 7836).
func CurveTC26_512B() *Curve { return curveTC26_512B }

// CurveTC26_512C is id-tc26-gost-3410-2012-512-paramSetC (RFC 7836).
func CurveTC26_512C() *Curve { return curveTC26_512C }

// curves are every parameter set by OID, the aliases of RFC 7836 and RFC 4357 included.
var curves = map[string]*Curve{
	"1.2.643.2.2.35.0":    curveTest256,
	"1.2.643.7.1.2.1.2.0": curveTest512,
	"1.2.643.2.2.35.1":    curveCryptoProA,
	"1.2.643.2.2.36.0":    curveCryptoProA, // id-GostR3410-2001-CryptoPro-XchA-ParamSet
	"1.2.643.7.1.2.1.1.2": curveCryptoProA, // id-tc26-gost-3410-2012-256-paramSetB
	"1.2.643.2.2.35.2":    curveCryptoProB,
	"1.2.643.7.1.2.1.1.3": curveCryptoProB, // id-tc26-gost-3410-2012-256-paramSetC
	"1.2.643.2.2.35.3":    curveCryptoProC,
	"1.2.643.2.2.36.1":    curveCryptoProC, // id-GostR3410-2001-CryptoPro-XchB-ParamSet
	"1.2.643.7.1.2.1.1.4": curveCryptoProC, // id-tc26-gost-3410-2012-256-paramSetD
	"1.2.643.7.1.2.1.1.1": curveTC26_256A,
	"1.2.643.7.1.2.1.2.1": curveTC26_512A,
	"1.2.643.7.1.2.1.2.2": curveTC26_512B,
	"1.2.643.7.1.2.1.2.3": curveTC26_512C,
}

// CurveByOID returns the parameter set named by a Russian-arc OID (RFC 4357, RFC 7836), or
// an error. The Kazakh parameter OIDs are resolved by ParsePKIXPublicKey with the key
// algorithm they belong to, not here.
func CurveByOID(oid asn1.ObjectIdentifier) (*Curve, error) {
	if c, ok := curves[oid.String()]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("gost: unknown parameter set %s", oid)
}
