package gost

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// pkcs8 is PrivateKeyInfo (RFC 5208), as much of it as GOST keys use.
type pkcs8 struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue `asn1:"optional,tag:0"`
}

// ParsePKCS8PrivateKey parses an unencrypted PKCS #8 PrivateKeyInfo of a GOST key. The
// algorithm and its parameters are checked as in ParsePKIXPublicKey. The scalar d is
// little-endian in every form seen: wrapped in a DER OCTET STRING inside privateKey (Kalkan's
// keys and RFC 9215), or the raw bytes as privateKey itself (OpenSSL's GOST engine); a DER
// INTEGER (older RFC 4491 keys) is read as an integer.
func ParsePKCS8PrivateKey(der []byte) (*PrivateKey, KeyAlgorithm, error) {
	var info pkcs8
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil {
		return nil, 0, fmt.Errorf("gost: PrivateKeyInfo: %w", err)
	}
	if len(rest) != 0 || info.Version != 0 {
		return nil, 0, errors.New("gost: PrivateKeyInfo with trailing data or an unknown version")
	}
	alg, curve, err := keyAlgorithmOf(info.Algorithm)
	if err != nil {
		return nil, 0, err
	}
	n := curve.size
	var le []byte
	switch raw := info.PrivateKey; {
	case len(raw) == n:
		le = raw
	default:
		var inner asn1.RawValue
		if rest, err := asn1.Unmarshal(raw, &inner); err != nil || len(rest) != 0 || inner.Class != asn1.ClassUniversal {
			return nil, 0, errors.New("gost: private key is neither raw bytes, an OCTET STRING nor an INTEGER")
		}
		switch {
		case inner.Tag == asn1.TagOctetString && len(inner.Bytes) == n:
			le = inner.Bytes
		case inner.Tag == asn1.TagInteger && len(inner.Bytes) > 0 && len(inner.Bytes) <= n+1 && inner.Bytes[0]&0x80 == 0:
			be := make([]byte, n+1)
			copy(be[n+1-len(inner.Bytes):], inner.Bytes)
			if be[0] != 0 {
				return nil, 0, fmt.Errorf("%w: private key INTEGER too large", ErrLength)
			}
			le = reversed(be[1:])
		default:
			return nil, 0, fmt.Errorf("%w: private key of %d bytes for %s, want %d", ErrLength, len(inner.Bytes), curve.name, n)
		}
	}
	k, err := NewPrivateKey(curve, reversed(le))
	if err != nil {
		return nil, 0, err
	}
	return k, alg, nil
}

// MarshalPKCS8PrivateKey encodes k as an unencrypted PKCS #8 PrivateKeyInfo of algorithm alg,
// in the form Kalkan writes and RFC 9215 describes: privateKey holds a DER OCTET STRING of d,
// little-endian.
func MarshalPKCS8PrivateKey(k *PrivateKey, alg KeyAlgorithm) ([]byte, error) {
	if k == nil {
		return nil, errors.New("gost: nil private key")
	}
	ai, err := algorithmIdentifier(k.pub.curve, alg)
	if err != nil {
		return nil, err
	}
	inner, err := asn1.Marshal(reversed(k.Bytes()))
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(pkcs8{Algorithm: ai, PrivateKey: inner})
}
