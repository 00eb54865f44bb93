package gost

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

// KeyAlgorithm is one SubjectPublicKeyInfo algorithm of GOST keys: its OID, the parameter
// sets (curves) it admits, its hash and the signature algorithm and byte convention that go
// with it. The zero value is no algorithm.
type KeyAlgorithm int

const (
	// KZ2004 is СТ РК ГОСТ Р 34.310-2004 (1.2.398.3.10.1.1.1.1): curve CryptoPro-A under the
	// Kazakh parameter OID 1.2.398.3.10.1.1.1.1.1, hash GOST 34.311-95 (NewGOST94), 64-byte keys.
	KZ2004 KeyAlgorithm = iota + 1
	// KZ2015_256 is GOST 34.10-2015 with 256 bits (1.2.398.3.10.1.1.2.1): the parameter OID
	// 1.2.398.3.10.1.1.2.1.1 taken to be id-tc26-gost-3410-12-256-paramSetA and the hash OID
	// 1.2.398.3.10.1.3.2 taken to be Streebog-256, both from public code: no Kalkan signature
	// has proven them here yet.
	KZ2015_256
	// KZ2015_512 is GOST 34.10-2015 with 512 bits (1.2.398.3.10.1.1.2.2): curve
	// id-tc26-gost-3410-12-512-paramSetA under 1.2.398.3.10.1.1.2.2.1, hash Streebog-512
	// (1.2.398.3.10.1.3.3), 128-byte keys.
	KZ2015_512
	// TC26_256 is id-tc26-gost3410-12-256 (1.2.643.7.1.1.1.1, RFC 9215), any 256-bit
	// parameter set of RFC 4357 or RFC 7836, hash Streebog-256: the keys of OpenSSL's GOST
	// engine (gost2012_256).
	TC26_256
	// TC26_512 is id-tc26-gost3410-12-512 (1.2.643.7.1.1.1.2, RFC 9215), the 512-bit parameter
	// sets of RFC 7836, hash Streebog-512 (OpenSSL's gost2012_512).
	TC26_512
)

type keyAlgorithm struct {
	name      string
	oid       asn1.ObjectIdentifier
	sigOID    asn1.ObjectIdentifier
	digestOID asn1.ObjectIdentifier
	params    map[string]*Curve // parameter set OID → curve
	hash      func() hash.Hash
	conv      Convention
}

var keyAlgorithms = map[KeyAlgorithm]*keyAlgorithm{
	KZ2004: {
		name:      "GOST 34.310-2004",
		oid:       asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 1, 1, 1},
		sigOID:    asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 1, 1, 2},
		digestOID: asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 3, 1, 1, 0},
		params:    map[string]*Curve{"1.2.398.3.10.1.1.1.1.1": curveCryptoProA},
		hash:      NewGOST94,
		conv:      Kazakh,
	},
	KZ2015_256: {
		name:      "GOST 34.10-2015 256",
		oid:       asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 1, 2, 1},
		sigOID:    asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 1, 2, 3, 1},
		digestOID: asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 3, 2},
		params:    map[string]*Curve{"1.2.398.3.10.1.1.2.1.1": curveTC26_256A},
		hash:      NewStreebog256,
		conv:      Kazakh,
	},
	KZ2015_512: {
		name:      "GOST 34.10-2015 512",
		oid:       asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 1, 2, 2},
		sigOID:    asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 1, 2, 3, 2},
		digestOID: asn1.ObjectIdentifier{1, 2, 398, 3, 10, 1, 3, 3},
		params:    map[string]*Curve{"1.2.398.3.10.1.1.2.2.1": curveTC26_512A},
		hash:      NewStreebog512,
		conv:      Kazakh,
	},
	TC26_256: {
		name:      "GOST R 34.10-2012 256",
		oid:       asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 1, 1},
		sigOID:    asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 3, 2},
		digestOID: asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 2},
		params:    curvesOfSize(32),
		hash:      NewStreebog256,
		conv:      RFC4491,
	},
	TC26_512: {
		name:      "GOST R 34.10-2012 512",
		oid:       asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 1, 2},
		sigOID:    asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 3, 3},
		digestOID: asn1.ObjectIdentifier{1, 2, 643, 7, 1, 1, 2, 3},
		params:    curvesOfSize(64),
		hash:      NewStreebog512,
		conv:      RFC4491,
	},
}

// curvesOfSize are the named production curves of one size under their Russian-arc OIDs; the
// test curves of RFC 7091 are left out.
func curvesOfSize(size int) map[string]*Curve {
	out := map[string]*Curve{}
	for oid, c := range curves {
		if c.size == size && c != curveTest256 && c != curveTest512 {
			out[oid] = c
		}
	}
	return out
}

func (a KeyAlgorithm) info() *keyAlgorithm {
	if k, ok := keyAlgorithms[a]; ok {
		return k
	}
	return nil
}

func (a KeyAlgorithm) String() string {
	if k := a.info(); k != nil {
		return k.name
	}
	return fmt.Sprintf("KeyAlgorithm(%d)", int(a))
}

// OID is the SubjectPublicKeyInfo algorithm OID (nil for an unknown algorithm).
func (a KeyAlgorithm) OID() asn1.ObjectIdentifier {
	return a.field(func(k *keyAlgorithm) asn1.ObjectIdentifier { return k.oid })
}

// SignatureOID is the OID of the signature algorithm of this key kind (certificates, CRLs);
// nil for an unknown algorithm.
func (a KeyAlgorithm) SignatureOID() asn1.ObjectIdentifier {
	return a.field(func(k *keyAlgorithm) asn1.ObjectIdentifier { return k.sigOID })
}

// DigestOID is the OID of the hash parameter set this key kind names (nil for an unknown
// algorithm).
func (a KeyAlgorithm) DigestOID() asn1.ObjectIdentifier {
	return a.field(func(k *keyAlgorithm) asn1.ObjectIdentifier { return k.digestOID })
}

func (a KeyAlgorithm) field(get func(*keyAlgorithm) asn1.ObjectIdentifier) asn1.ObjectIdentifier {
	if k := a.info(); k != nil {
		return cloneOID(get(k))
	}
	return nil
}

// NewHash returns a new hash of the kind a key of this algorithm signs, or nil for an unknown
// algorithm.
func (a KeyAlgorithm) NewHash() hash.Hash {
	if k := a.info(); k != nil {
		return k.hash()
	}
	return nil
}

// Convention is the byte convention of signatures by keys of this algorithm: Kazakh for the
// KZ algorithms, RFC4491 for the TC26 ones.
func (a KeyAlgorithm) Convention() Convention {
	if k := a.info(); k != nil {
		return k.conv
	}
	return Kazakh
}

// Admits reports whether keys of this algorithm may be on curve c.
func (a KeyAlgorithm) Admits(c *Curve) bool {
	k := a.info()
	if k == nil {
		return false
	}
	for _, x := range k.params {
		if x == c {
			return true
		}
	}
	return false
}

func cloneOID(o asn1.ObjectIdentifier) asn1.ObjectIdentifier {
	return append(asn1.ObjectIdentifier(nil), o...)
}

type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// keyParams is GostR3410-2012-PublicKeyParameters (RFC 9215 section 4.2): a SEQUENCE of the
// parameter set OID, the digest OID (optional) and, in older keys, an encryption parameter
// set OID (RFC 4491), which this package ignores.
type keyParams struct {
	PublicKeyParamSet  asn1.ObjectIdentifier
	DigestParamSet     asn1.ObjectIdentifier `asn1:"optional"`
	EncryptionParamSet asn1.ObjectIdentifier `asn1:"optional"`
}

// ErrUnknownAlgorithm: a SubjectPublicKeyInfo algorithm that is none of the GOST ones here.
var ErrUnknownAlgorithm = errors.New("gost: not a GOST key algorithm")

// ParsePKIXPublicKey parses a DER SubjectPublicKeyInfo of a GOST key (the Kazakh algorithms
// under 1.2.398.3.10.1 and the RFC 9215 ones), checks its parameters against its algorithm
// (a 2004 key cannot claim a 2015 curve, a 512-bit algorithm a 256-bit curve) and its point
// (NewPublicKey), and returns the key with its algorithm. The key is an OCTET STRING of X
// then Y, each little-endian, inside the BIT STRING.
func ParsePKIXPublicKey(der []byte) (*PublicKey, KeyAlgorithm, error) {
	var info subjectPublicKeyInfo
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil {
		return nil, 0, fmt.Errorf("gost: SubjectPublicKeyInfo: %w", err)
	}
	if len(rest) != 0 {
		return nil, 0, errors.New("gost: trailing data after SubjectPublicKeyInfo")
	}
	alg, curve, err := keyAlgorithmOf(info.Algorithm)
	if err != nil {
		return nil, 0, err
	}
	if info.PublicKey.BitLength != 8*len(info.PublicKey.Bytes) {
		return nil, 0, errors.New("gost: public key BIT STRING with unused bits")
	}
	var raw []byte
	rest, err = asn1.Unmarshal(info.PublicKey.Bytes, &raw)
	if err != nil || len(rest) != 0 {
		return nil, 0, errors.New("gost: public key is not one OCTET STRING")
	}
	// Kazakh, RFC 4491 and RFC 9215 all write the point X||Y little-endian.
	pub, err := Kazakh.ParsePublicKey(curve, raw)
	if err != nil {
		return nil, 0, err
	}
	return pub, alg, nil
}

// MarshalPKIXPublicKey encodes pub as a DER SubjectPublicKeyInfo of algorithm alg, with the
// parameter OIDs of that algorithm (the Kazakh ones for KZ*). It refuses a curve the
// algorithm does not admit.
func MarshalPKIXPublicKey(pub *PublicKey, alg KeyAlgorithm) ([]byte, error) {
	if pub == nil {
		return nil, errors.New("gost: nil public key")
	}
	ai, err := algorithmIdentifier(pub.curve, alg)
	if err != nil {
		return nil, err
	}
	key, err := asn1.Marshal(Kazakh.MarshalPublicKey(pub))
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(subjectPublicKeyInfo{
		Algorithm: ai,
		PublicKey: asn1.BitString{Bytes: key, BitLength: 8 * len(key)},
	})
}

// keyAlgorithmOf resolves an AlgorithmIdentifier of a GOST key: the algorithm, and the curve
// its parameters name, which the algorithm must admit.
func keyAlgorithmOf(ai pkix.AlgorithmIdentifier) (KeyAlgorithm, *Curve, error) {
	var alg KeyAlgorithm
	for a, k := range keyAlgorithms {
		if k.oid.Equal(ai.Algorithm) {
			alg = a
		}
	}
	if alg == 0 {
		return 0, nil, fmt.Errorf("%w: %s", ErrUnknownAlgorithm, ai.Algorithm)
	}
	k := alg.info()
	var params keyParams
	rest, err := asn1.Unmarshal(ai.Parameters.FullBytes, &params)
	if err != nil || len(rest) != 0 {
		return 0, nil, fmt.Errorf("gost: %s key without valid parameters", k.name)
	}
	curve, ok := k.params[params.PublicKeyParamSet.String()]
	if !ok {
		return 0, nil, fmt.Errorf("gost: %s key with parameter set %s, which it does not admit", k.name, params.PublicKeyParamSet)
	}
	if len(params.DigestParamSet) != 0 && !params.DigestParamSet.Equal(k.digestOID) {
		return 0, nil, fmt.Errorf("gost: %s key with digest parameters %s, want %s", k.name, params.DigestParamSet, k.digestOID)
	}
	return alg, curve, nil
}

// algorithmIdentifier is the AlgorithmIdentifier of a key of algorithm alg on curve c, with
// that algorithm's parameter OIDs (the Kazakh ones for KZ*).
func algorithmIdentifier(c *Curve, alg KeyAlgorithm) (pkix.AlgorithmIdentifier, error) {
	k := alg.info()
	if k == nil {
		return pkix.AlgorithmIdentifier{}, fmt.Errorf("gost: unknown key algorithm %d", int(alg))
	}
	var paramOID asn1.ObjectIdentifier
	for oid, pc := range k.params {
		if pc != c {
			continue
		}
		o, err := parseOID(oid)
		if err != nil {
			return pkix.AlgorithmIdentifier{}, err
		}
		// Among the aliases of one curve, write its own OID (RFC 4357, RFC 7836) when it has one.
		if paramOID == nil || o.Equal(c.oid) {
			paramOID = o
		}
	}
	if paramOID == nil {
		return pkix.AlgorithmIdentifier{}, fmt.Errorf("gost: %s keys cannot be on %s", k.name, c.name)
	}
	params := keyParams{PublicKeyParamSet: paramOID}
	// RFC 9215 section 4.2: no digest OID for the 512-bit keys and for 256-bit paramSetA keys;
	// the Kazakh keys carry theirs (issue 17).
	switch {
	case alg == TC26_512, alg == TC26_256 && c == curveTC26_256A:
	default:
		params.DigestParamSet = k.digestOID
	}
	pbytes, err := asn1.Marshal(params)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: k.oid, Parameters: asn1.RawValue{FullBytes: pbytes}}, nil
}

func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var o asn1.ObjectIdentifier
	n := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			o = append(o, n)
			n = 0
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("gost: bad OID %q", s)
		}
		n = 10*n + int(s[i]-'0')
	}
	return o, nil
}
