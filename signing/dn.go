package signing

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A ds:X509IssuerName is a distinguished name written as text, and every stack writes it its own
// way: Java as RFC 2253 with unknown attributes as OID=#hex (so a serialNumber is
// "2.5.4.5=#130f…"), xmlsec and .NET with short names and spaces after the commas, some with
// "E=" or "S=". The name is therefore parsed into its attributes and compared with the
// certificate's issuer as a set of (type, value) pairs, values without regard to case and
// surrounding space. A loose match can only pick a certificate the broker already holds for a
// registered user, whose key must still verify the signature.

// dnAttribute is one attribute of a parsed distinguished name.
type dnAttribute struct {
	oid   string // dotted
	value string
}

// dnShortNames maps the attribute names stacks write to their OIDs (RFC 4514 §3, RFC 4519, and
// the spellings of Java, .NET and OpenSSL).
var dnShortNames = map[string]string{
	"CN": "2.5.4.3", "C": "2.5.4.6", "L": "2.5.4.7", "ST": "2.5.4.8", "S": "2.5.4.8", "STREET": "2.5.4.9",
	"O": "2.5.4.10", "OU": "2.5.4.11", "T": "2.5.4.12", "TITLE": "2.5.4.12", "SN": "2.5.4.4", "SURNAME": "2.5.4.4",
	"SERIALNUMBER": "2.5.4.5", "G": "2.5.4.42", "GIVENNAME": "2.5.4.42", "DC": "0.9.2342.19200300.100.1.25",
	"UID": "0.9.2342.19200300.100.1.1", "E": "1.2.840.113549.1.9.1", "EMAIL": "1.2.840.113549.1.9.1",
	"EMAILADDRESS": "1.2.840.113549.1.9.1", "OID.2.5.4.5": "2.5.4.5",
}

// maxDNAttributes bounds a parsed name; a certificate issuer has a handful.
const maxDNAttributes = 32

// parseDN parses a distinguished name written as text (RFC 4514, with the variations above).
func parseDN(s string) ([]dnAttribute, error) {
	var out []dnAttribute
	p := dnParser{s: s}
	for {
		p.skipSpace()
		if p.done() {
			break
		}
		typ := p.until("=")
		if !p.consume('=') {
			return nil, fmt.Errorf("attribute %q has no value", typ)
		}
		oid, err := dnOID(strings.TrimSpace(typ))
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		value, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, dnAttribute{oid: oid, value: normaliseDNValue(value)})
		if len(out) > maxDNAttributes {
			return nil, errors.New("too many attributes")
		}
		p.skipSpace()
		if p.done() {
			break
		}
		if !p.consume(',') && !p.consume(';') && !p.consume('+') {
			return nil, fmt.Errorf("unexpected %q after the value of %s", p.s[p.i:p.i+1], typ)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no attributes")
	}
	return out, nil
}

func dnOID(typ string) (string, error) {
	upper := strings.ToUpper(typ)
	if oid, ok := dnShortNames[upper]; ok {
		return oid, nil
	}
	upper = strings.TrimPrefix(upper, "OID.")
	if upper == "" || strings.Trim(upper, "0123456789.") != "" || strings.Contains(upper, "..") {
		return "", fmt.Errorf("unknown attribute type %q", typ)
	}
	return upper, nil
}

type dnParser struct {
	s string
	i int
}

func (p *dnParser) done() bool { return p.i >= len(p.s) }

func (p *dnParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *dnParser) consume(b byte) bool {
	if p.i < len(p.s) && p.s[p.i] == b {
		p.i++
		return true
	}
	return false
}

func (p *dnParser) until(stop string) string {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(stop, rune(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads an attribute value: #hex of a DER string, a quoted string, or a string with
// backslash escapes (\, \+ \" \\ \< \> \; \= and \XX hex pairs of UTF-8 bytes).
func (p *dnParser) value() (string, error) {
	if p.consume('#') {
		raw, err := hex.DecodeString(strings.TrimSpace(p.until(",;+")))
		if err != nil {
			return "", fmt.Errorf("#hex value: %w", err)
		}
		var v asn1.RawValue
		if rest, err := asn1.Unmarshal(raw, &v); err != nil || len(rest) != 0 {
			return "", errors.New("#hex value is not one DER value")
		}
		var s string
		if _, err := asn1.Unmarshal(raw, &s); err == nil {
			return s, nil
		}
		return string(v.Bytes), nil // BMPString and others: compared as bytes, which will not match a string
	}
	if p.consume('"') {
		var b []byte
		for !p.done() {
			c := p.s[p.i]
			p.i++
			switch c {
			case '"':
				return string(b), nil
			case '\\':
				if p.done() {
					return "", errors.New("a value ends in a backslash")
				}
				b = append(b, p.s[p.i])
				p.i++
			default:
				b = append(b, c)
			}
		}
		return "", errors.New("an unterminated quoted value")
	}
	var b []byte
	for !p.done() {
		c := p.s[p.i]
		if c == ',' || c == ';' || c == '+' {
			break
		}
		p.i++
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if p.done() {
			return "", errors.New("a value ends in a backslash")
		}
		if p.i+1 < len(p.s) && isHex(p.s[p.i]) && isHex(p.s[p.i+1]) {
			x, _ := hex.DecodeString(p.s[p.i : p.i+2])
			b = append(b, x[0])
			p.i += 2
			continue
		}
		b = append(b, p.s[p.i])
		p.i++
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// normaliseDNValue trims a value, collapses runs of space and folds case, for comparison.
func normaliseDNValue(v string) string {
	return strings.ToLower(strings.Join(strings.Fields(v), " "))
}

// issuerMatches reports whether name, a distinguished name as text, names cert's issuer.
func issuerMatches(name string, cert *x509.Certificate) bool {
	given, err := parseDN(name)
	if err != nil {
		return false
	}
	var have []dnAttribute
	for _, atv := range cert.Issuer.Names {
		v, ok := atv.Value.(string)
		if !ok {
			return false
		}
		have = append(have, dnAttribute{oid: atv.Type.String(), value: normaliseDNValue(v)})
	}
	order := func(a, b dnAttribute) int {
		if c := strings.Compare(a.oid, b.oid); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	}
	slices.SortFunc(given, order)
	slices.SortFunc(have, order)
	return slices.Equal(given, have)
}
