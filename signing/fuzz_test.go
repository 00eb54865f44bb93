package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/fuzzbound"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing/gost"
	"github.com/sio-pso/siobroker/signing/gostx509"
)

// The bounds of the fuzz targets of this package (issue 16). Measured on 7 December 2026 (Go
// 1.26, 2-core Xeon, without the race detector): reading and verifying a validly signed request
// whose query holds 20,000 empty elements, the densest within the limits, cost 0.6 ms of CPU,
// 2,500 allocations and 200 KB allocated per KB (the reader's share, the canonicalisation of the
// Body and the parse of the canonical form); canonicalising the densest documents (attributes,
// prefixed attributes, declarations) at most 0.07 ms, 230 allocations and 27 KB per KB. The
// bounds leave a margin of about 2 for the counts and 5 to 15 for the CPU, which fuzzbound
// multiplies under -race. The constant parts cover one signature verification and the chain.
var (
	verifyBound = fuzzbound.Bound{
		CPUBase: 100 * time.Millisecond, CPUPerKB: 3 * time.Millisecond,
		AllocsBase: 20000, AllocsPerKB: 5000,
		BytesBase: 4 << 20, BytesPerByte: 400,
	}
	c14nBound = fuzzbound.Bound{
		CPUBase: 50 * time.Millisecond, CPUPerKB: time.Millisecond,
		AllocsBase: 2000, AllocsPerKB: 1000,
		BytesBase: 1 << 20, BytesPerByte: 100,
	}
	// hangLimit is the wall time after which one input counts as a hang, whatever the load.
	hangLimit = 20 * time.Second
)

// FuzzCanonicalize canonicalises one element of an arbitrary document, by either algorithm, with
// or without comments, an InclusiveNamespaces PrefixList and an excluded element. Nothing may
// panic; the work (namespace bindings pushed and prefixes considered) is at most four steps per
// element and attribute of the document, and the cost within c14nBound; and the canonical form
// is a fixed point: it parses, and canonicalising it again gives the same bytes. The verifier
// relies on the last: Verified.Signed is parsed from the canonical bytes that were digested.
func FuzzCanonicalize(f *testing.F) {
	seeds := fuzzbound.NewSeeds(f)
	for _, name := range []string{"c14n-edge.xml", "request.xml", "response.xml", "wsse-template.xml", "enveloped-template.xml"} {
		raw, err := os.ReadFile(filepath.Join("..", "testdata", "signing", name))
		if err != nil {
			f.Fatal(err)
		}
		for mode := range uint16(4) {
			seeds.Add(fmt.Sprintf("%s mode %d", name, mode), raw, uint16(0), mode, "")
		}
		seeds.Add(name+" inner apex", raw, uint16(7), uint16(1), "#default q")
	}
	for _, name := range interopFiles {
		seeds.Add("interop "+name, interopEnvelope(f, name), uint16(3), uint16(1), "wsse ds")
	}
	// TestCanonicalizeSubset's document, its x as the apex: ancestors' declarations, xml:lang.
	subset := []byte(`<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d" xmlns:z="urn:0" xml:lang="kk">` +
		`<x b:z="1" y="2&#9;" a:w="&lt;&quot;&amp;" z:v="0"><!--c-->t&amp;&lt;&gt;&#13;<e/></x></a:r>`)
	seeds.Add("subset exclusive", subset, uint16(1), uint16(1), "")
	seeds.Add("subset inclusive with comments", subset, uint16(1), uint16(2), "")
	seeds.Add("subset excluding e", subset, uint16(1), uint16(1|4|2<<3), "a z")
	seeds.Add("undeclaring the default namespace", []byte(`<r xmlns="urn:d"><a xmlns=""><b xmlns="urn:d"/></a></r>`), uint16(1), uint16(0), "")
	seeds.Add("undeclared prefix", []byte(`<r><p:a/></r>`), uint16(0), uint16(1), "")
	seeds.Add("redeclared prefix", []byte(`<p:r xmlns:p="urn:1"><p:a xmlns:p="urn:2" p:x="1"/></p:r>`), uint16(0), uint16(1), "p")
	seeds.Add("processing instruction", []byte(`<r><?pi data?><a/></r>`), uint16(0), uint16(0), "")
	// The densest documents the bounds were measured on: empty elements, and prefixed attributes
	// each with its declaration.
	var pattrs strings.Builder
	for i := range soap.DefaultMaxNamespaceDecls {
		fmt.Fprintf(&pattrs, ` xmlns:p%d="u%d" p%d:a=""`, i, i, i)
	}
	seeds.Add("dense elements", []byte("<r>"+strings.Repeat("<b/>", soap.DefaultMaxElements)+"</r>"), uint16(0), uint16(1), "")
	seeds.Add("dense prefixed attributes", []byte("<r>"+strings.Repeat("<b"+pattrs.String()+"/>", 150)+"</r>"), uint16(0), uint16(0), "")
	for _, shape := range hostileShapes {
		raw := buildHostile(f, shape, "unsigned", fuzzSeedDiv, nil, nil)
		seeds.Add("hostile "+shape.name, raw, uint16(2), uint16(1), "")
		seeds.Add("hostile "+shape.name+" inclusive", raw, uint16(2), uint16(0), "")
	}
	f.Fuzz(func(t *testing.T, raw []byte, apex, mode uint16, prefixList string) {
		if len(raw) > soap.DefaultMaxBytes || len(prefixList) > 1024 {
			return // the reader and inclusivePrefixList refuse these before canonicalisation
		}
		doc := etree.NewDocument()
		if doc.ReadFromBytes(raw) != nil || doc.Root() == nil {
			return
		}
		els := elementsOf(doc.Root())
		size := 0
		for _, e := range els {
			size += 1 + len(e.Attr)
		}
		el := els[int(apex)%len(els)]
		method := c14nMethod{exclusive: mode&1 != 0, comments: mode&2 != 0}
		var exclude *etree.Element
		if mode&4 != 0 {
			exclude = els[int(mode>>3)%len(els)]
		}
		var out []byte
		var steps int
		var err error
		stop := fuzzbound.Watchdog(hangLimit, "canonicalize")
		cost := fuzzbound.Measure(func() { out, steps, err = canonicalizeCounting(el, method, prefixList, exclude) })
		stop()
		c14nBound.Check(t, len(raw), cost)
		if limit := 4*size + len(strings.Fields(prefixList)) + 8; steps > limit {
			t.Errorf("%d steps for %d elements and attributes, over %d", steps, size, limit)
		}
		if err != nil {
			return
		}
		again := etree.NewDocument()
		if err := again.ReadFromBytes(out); err != nil || again.Root() == nil {
			t.Fatalf("the canonical form does not parse (%v):\n%s", err, out)
		}
		out2, err := canonicalize(again.Root(), method, prefixList, nil)
		if err != nil {
			t.Fatalf("the canonical form cannot be canonicalised: %v\n%s", err, out)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("canonicalising the canonical form changed it:\n%s\n%s", out, out2)
		}
	})
}

// FuzzVerify reads arbitrary envelopes under the production limits and verifies them, as the
// broker does before it knows the sender. The seeds are envelopes signed by a fixed test key
// (fuzzPKI; the key stays the same from run to run, so a kept input stays signed) and by the
// real clients of testdata/signing/interop, and every tampering and wrapping of the tests. An
// input is (raw, ops): ops, if any, edit raw's tree before it is serialised and read (fuzzOps),
// which makes the moves of a wrapping attack a few bytes away.
//
// Nothing may panic, a refusal has a code, the cost stays within verifyBound; and an envelope
// that verifies must hand on (Verified.Signed) content that canonicalises exactly as the signed
// content of one of the originals: the key is nobody's but this test's, so anything else would be
// content nobody signed.
func FuzzVerify(f *testing.F) {
	p := fuzzPKI(f)
	seeds := fuzzbound.NewSeeds(f)
	for _, o := range p.originals {
		seeds.Add("original "+o.name, o.raw, []byte(nil))
	}
	// A few edits of each of the test key's originals and of two clients' to start from: moves,
	// copies, renames, a comment, a prefix rebound.
	edits := [][]byte{{0, 18, 1}, {2, 5, 18, 10, 7, 0}, {12, 20, 18, 4, 18, 3}, {7, 18, 2, 11, 18, 4}}
	for _, name := range []string{"wsse", "wsse-token", "wsse-token-ts", "enveloped", "interop nodesoap-default.xml", "interop wss4j-bst.xml",
		"gost2015-512 wsse", "gost2004 enveloped"} {
		for i, ops := range edits {
			seeds.Add(fmt.Sprintf("edits %d of %s", i, name), p.original(f, name), ops)
		}
	}
	// A comment inside signed content: the #id dereference leaves comments out of the digest, so
	// the envelope verifies, and Verified.Signed must come without it (it splits a text for
	// etree); as must a comment beside the signed content.
	for _, o := range p.originals[:4] {
		for _, tag := range []string{"query", "iin", "Body", "requestInfo"} {
			seeds.Add(fmt.Sprintf("comment in %s of %s", tag, o.name), o.raw, []byte{10, elementIndex(f, o.raw, tag), 0})
		}
	}
	sign := func(name string, placement Placement, edit func(doc *etree.Document)) {
		doc := loadDoc(f, "request.xml")
		if err := p.signer.Sign(doc, placement); err != nil {
			f.Fatal(err)
		}
		doc = reparse(f, doc)
		edit(doc)
		raw, err := doc.WriteToBytes()
		if err != nil {
			f.Fatal(err)
		}
		seeds.Add(name, raw, []byte(nil))
	}
	for _, tc := range tamperCases() {
		sign("tamper "+tc.name, tc.placement, func(doc *etree.Document) { tc.tamper(f, doc) })
	}
	for _, tc := range wrapCases() {
		sign("wrap "+tc.name, tc.placement, func(doc *etree.Document) { tc.wrap(f, doc) })
	}
	for _, tc := range timestampWrapCases() {
		sign("timestamp wrap "+tc.name, PlacementWSSETokenTimestamp, func(doc *etree.Document) { tc.wrap(f, doc) })
	}
	for _, tc := range keyInfoRefusals(p.signer.Certificate(), fixture.signers["revoked/rsa"].Certificate(), p.interopUsers[1]) {
		sign("keyinfo "+tc.name, PlacementWSSE, func(doc *etree.Document) { setKeyInfo(f, doc, tc.fill) })
	}
	for _, tc := range referencesCases(fixedClock(fuzzAt)) {
		if tc.code == "" {
			continue // an original
		}
		doc := loadDoc(f, "request.xml")
		signHeaderByHand(f, doc, p.signer, tc.prepare(f, doc))
		raw, err := doc.WriteToBytes()
		if err != nil {
			f.Fatal(err)
		}
		seeds.Add("references "+tc.name, raw, []byte(nil))
	}
	for _, shape := range hostileShapes {
		for _, variant := range hostileVariants {
			seeds.Add("hostile "+shape.name+" "+variant, buildHostile(f, shape, variant, fuzzSeedDiv, p.signer, p.foreign), []byte(nil))
		}
	}

	f.Fuzz(func(t *testing.T, raw, ops []byte) {
		env := fuzzOps(raw, ops)
		var vd *Verified
		var err error
		stop := fuzzbound.Watchdog(hangLimit, "ReadEnvelope and Verify")
		cost := fuzzbound.Measure(func() { vd, err = p.readAndVerify(env) })
		stop()
		verifyBound.Check(t, len(env), cost)
		if err != nil {
			var e *siobroker.Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("refusal without a code: %v (%T)", err, err)
			}
			if vd != nil {
				t.Fatal("a refusal returned a Verified too")
			}
			return
		}
		got, err := signedForm(vd.Signed)
		if err != nil {
			t.Fatalf("the verified content cannot be canonicalised: %v", err)
		}
		if !p.signed[got] {
			t.Fatalf("verified content (%s) that no original carries:\n%s\nenvelope:\n%s", vd.Placement, got, env)
		}
	})
}

// fuzzAt is the one instant FuzzVerify verifies at: inside the validity of the fixed test key's
// certificates and of the interop clients' (2026-12-06 to 2029-12-05).
var fuzzAt = time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)

// fuzzSeedDiv divides the counts of the hostile shapes in the seeds: about 15 KB each instead
// of 300, some over a default limit and some under.
const fuzzSeedDiv = 20

// interopFiles are the real clients' envelopes of testdata/signing/interop (TestClientEnvelopes).
var interopFiles = []string{
	"nodesoap-default.xml", "zeep-binary.xml", "zeep-signature.xml", "wss4j-bst.xml", "wss4j-bst-ecdsa.xml",
	"wss4j-issuerserial.xml", "wss4j-ski.xml", "wss4j-thumbprint.xml", "wss4j-x509.xml",
}

func interopEnvelope(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "signing", "interop", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// fuzzFixture is what FuzzVerify verifies with and against.
type fuzzFixture struct {
	signer       *Signer // the fixed test key's user
	foreign      *Signer // the same, under a CA the verifier does not trust
	interopUsers []*x509.Certificate
	verifier     *Verifier
	originals    []original
	// signed holds the signedForm of the signed content of every original.
	signed map[string]bool
}

// original is a properly signed envelope.
type original struct {
	name string
	raw  []byte
}

// original returns the envelope of the original named name.
func (p *fuzzFixture) original(t testing.TB, name string) []byte {
	t.Helper()
	for _, o := range p.originals {
		if o.name == name {
			return o.raw
		}
	}
	t.Fatalf("no original %q", name)
	return nil
}

func (p *fuzzFixture) readAndVerify(raw []byte) (*Verified, error) {
	doc, _, err := soap.ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8", soap.Limits{})
	if err != nil {
		return nil, err
	}
	return p.verifier.Verify(context.Background(), doc, fuzzAt)
}

var (
	fuzzFixtureOnce sync.Once
	fuzzFixtureVal  *fuzzFixture
)

// fuzzPKI returns FuzzVerify's fixture, built once per process: a CA and a user whose ECDSA
// keys are derived from fixed strings (and a second pair the verifier does not trust), so that they are the same in every run without a private
// key in the repository (the certificates are made anew, but with the same names and keys a
// certificate kept in a seed still chains to the CA); a trust store of that CA and the interop
// clients' CA; and the originals, every one of which must verify.
func fuzzPKI(t testing.TB) *fuzzFixture {
	t.Helper()
	fuzzFixtureOnce.Do(func() { fuzzFixtureVal = buildFuzzPKI(t) })
	if fuzzFixtureVal == nil {
		t.Fatal("the fuzz fixture could not be built")
	}
	return fuzzFixtureVal
}

func buildFuzzPKI(t testing.TB) *fuzzFixture {
	t.Helper()
	key := func(name string) *ecdsa.PrivateKey {
		d := sha256.Sum256([]byte("siobroker FuzzVerify test key, not a secret: " + name))
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)
	iin, _ := siobroker.CompleteIIN("80010130012")
	// issue makes a CA named caName and a signing user under it.
	issue := func(caName string) (*x509.Certificate, *Signer) {
		caKey, userKey := key(caName), key(caName+" user")
		caTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: caName},
			NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := x509.ParseCertificate(caDER)
		userDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "FUZZ TEST USER", SerialNumber: "IIN" + iin},
			NotBefore: from, NotAfter: to,
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		}, ca, userKey.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		user, _ := x509.ParseCertificate(userDER)
		signer, err := NewSigner(user, userKey)
		if err != nil {
			t.Fatal(err)
		}
		return ca, signer.WithClock(fixedClock(fuzzAt))
	}
	// issueGOST is issue for a GOST key kind of the НУЦ РК: a CA and a user under it, both
	// GOST, their keys fixed like the others (a hash of the name, reduced below q).
	issueGOST := func(caName string, curve *gost.Curve, alg gost.KeyAlgorithm) (*x509.Certificate, *Signer) {
		gkey := func(name string) *gost.PrivateKey {
			d := sha512.Sum512([]byte("siobroker FuzzVerify GOST test key, not a secret: " + name))
			q := curve.Params().Q
			n := new(big.Int).Mod(new(big.Int).SetBytes(d[:]), new(big.Int).Sub(q, big.NewInt(1)))
			k, err := gost.NewPrivateKey(curve, n.Add(n, big.NewInt(1)).FillBytes(make([]byte, curve.Size())))
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
		caKey, userKey := gkey(caName), gkey(caName+" user")
		caTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: caName},
			NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		caDER, err := gostx509.CreateCertificate(rand.Reader, caTmpl, caTmpl, gostx509.Key{Public: caKey.PublicKey(), Algorithm: alg}, caKey)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := x509.ParseCertificate(caDER)
		if err != nil {
			t.Fatal(err)
		}
		userDER, err := gostx509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "FUZZ TEST GOST USER", SerialNumber: "IIN" + iin},
			NotBefore: from, NotAfter: to,
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
		}, ca, gostx509.Key{Public: userKey.PublicKey(), Algorithm: alg}, caKey)
		if err != nil {
			t.Fatal(err)
		}
		user, err := x509.ParseCertificate(userDER)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := NewSigner(user, userKey)
		if err != nil {
			t.Fatal(err)
		}
		return ca, signer.WithClock(fixedClock(fuzzAt))
	}
	ca, signer := issue("siobroker FuzzVerify CA (tests only)")
	// GOST 34.10-2015 512 (keys issued since 2022) and GOST 34.310-2004 (the gateway's): their
	// signed requests are originals too, so that the fuzzer mutates GOST signatures, keys and
	// chains as it does the others.
	gost512CA, gost512 := issueGOST("siobroker FuzzVerify GOST 2015 CA (tests only)", gost.CurveTC26_512A(), gost.KZ2015_512)
	gost2004CA, gost2004 := issueGOST("siobroker FuzzVerify GOST 2004 CA (tests only)", gost.CurveCryptoProA(), gost.KZ2004)
	_, foreign := issue("siobroker FuzzVerify untrusted CA (tests only)")
	p := &fuzzFixture{signer: signer, foreign: foreign, signed: map[string]bool{}}

	dir := filepath.Join("..", "testdata", "signing", "interop", "pki")
	roots, err := LoadCertificates(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, iin := range []string{"750312300458", "900114302034"} {
		c, err := LoadCertificates(filepath.Join(dir, iin+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		p.interopUsers = append(p.interopUsers, c[0])
	}
	trust, err := NewTrustStore(append(roots, ca, gost512CA, gost2004CA), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.verifier = mustVerifier(t, VerifierConfig{Trust: trust, Directory: certDirectory{certs: p.interopUsers}})

	// The broker's reader takes requests only (a reply is read by the client).
	for _, placement := range []Placement{PlacementWSSE, PlacementWSSEToken, PlacementWSSETokenTimestamp, PlacementEnveloped} {
		doc := loadDoc(t, "request.xml")
		if err := p.signer.Sign(doc, placement); err != nil {
			t.Fatal(err)
		}
		raw, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		p.originals = append(p.originals, original{string(placement), raw})
	}
	for _, g := range []struct {
		name   string
		signer *Signer
	}{{"gost2015-512", gost512}, {"gost2004", gost2004}} {
		for _, placement := range []Placement{PlacementWSSE, PlacementEnveloped} {
			doc := loadDoc(t, "request.xml")
			if err := g.signer.Sign(doc, placement); err != nil {
				t.Fatal(err)
			}
			raw, err := doc.WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			p.originals = append(p.originals, original{g.name + " " + string(placement), raw})
		}
	}
	for _, tc := range referencesCases(fixedClock(fuzzAt)) {
		if tc.code != "" {
			continue // a refusal: a seed, not an original
		}
		doc := loadDoc(t, "request.xml")
		signHeaderByHand(t, doc, p.signer, tc.prepare(t, doc))
		raw, err := doc.WriteToBytes()
		if err != nil {
			t.Fatal(err)
		}
		p.originals = append(p.originals, original{"references " + tc.name, raw})
	}
	for _, name := range interopFiles {
		p.originals = append(p.originals, original{"interop " + name, interopEnvelope(t, name)})
	}
	// The densest request within the limits, which verifyBound was measured on: the signed query
	// holds as many empty elements as the element limit allows.
	doc := loadDoc(t, "request.xml")
	q := doc.FindElement("//query")
	for range soap.DefaultMaxElements - 100 {
		q.CreateElement("b")
	}
	if err := p.signer.Sign(doc, PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	p.originals = append(p.originals, original{"dense elements", raw})
	for _, o := range p.originals {
		vd, err := p.readAndVerify(o.raw)
		if err != nil {
			t.Fatalf("original %s does not verify: %v", o.name, err)
		}
		c, err := signedForm(vd.Signed)
		if err != nil {
			t.Fatal(err)
		}
		p.signed[c] = true
	}
	return p
}

// signedForm is what FuzzVerify compares of the signed content: its exclusive canonical form
// with comments, and its tree exactly as etree writes it. Verified.Signed is parsed from the
// canonical bytes that were digested, so an envelope that verifies hands on exactly the tree of
// an original; the comments and the exact tree catch content that canonicalisation without
// comments would hide (a comment splits a text in two for etree's Text).
func signedForm(el *etree.Element) (string, error) {
	c, err := canonicalize(el, c14nMethod{exclusive: true, comments: true}, "", nil)
	if err != nil {
		return "", err
	}
	return string(c) + "\n" + elementString(el), nil
}

// elementIndex returns the index in document order (fuzzOps's x) of the first element of raw
// named tag.
func elementIndex(t testing.TB, raw []byte, tag string) byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	for i, el := range elementsOf(doc.Root()) {
		if el.Tag == tag && i < 256 {
			return byte(i)
		}
	}
	t.Fatalf("no element %s", tag)
	return 0
}

// elementsOf returns root and its descendant elements in document order.
func elementsOf(root *etree.Element) []*etree.Element {
	var out []*etree.Element
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		out = append(out, el)
		for _, c := range el.ChildElements() {
			walk(c)
		}
	}
	walk(root)
	return out
}

// maxFuzzOps bounds the edits of one input.
const maxFuzzOps = 8

// fuzzOps applies ops to the tree of raw and returns it serialised; raw as it is if there are
// no ops or it does not parse. Each op is three bytes, (op, x, y): x and y pick elements in
// document order (modulo their number; y is an attribute index for op 8). The edits are those of
// wrapping attacks: moving, copying, removing, wrapping and renaming elements, moving
// identifiers, and rebinding prefixes.
func fuzzOps(raw, ops []byte) []byte {
	if len(ops) < 3 {
		return raw
	}
	doc := etree.NewDocument()
	if doc.ReadFromBytes(raw) != nil || doc.Root() == nil {
		return raw
	}
	for n := 0; len(ops) >= 3 && n < maxFuzzOps; n, ops = n+1, ops[3:] {
		els := elementsOf(doc.Root())
		x, y := els[int(ops[1])%len(els)], els[int(ops[2])%len(els)]
		parent := x.Parent()
		switch ops[0] % 13 {
		case 0, 1: // move x into y, last or first
			if parent == nil || within(y, x) {
				continue
			}
			parent.RemoveChild(x)
			if ops[0]%13 == 0 {
				y.AddChild(x)
			} else {
				y.InsertChildAt(0, x)
			}
		case 2: // a copy of x into y
			y.AddChild(x.Copy())
		case 3: // remove x
			if parent != nil {
				parent.RemoveChild(x)
			}
		case 4: // replace x by a copy of y
			if parent != nil {
				parent.InsertChildAt(x.Index(), y.Copy())
				parent.RemoveChild(x)
			}
		case 5: // wrap x in an element named as y
			if parent != nil {
				w := etree.NewElement(y.FullTag())
				parent.InsertChildAt(x.Index(), w)
				parent.RemoveChild(x)
				w.AddChild(x)
			}
		case 6: // swap x with the element before it
			if parent != nil {
				if i := x.Index(); i > 0 {
					parent.RemoveChild(x)
					parent.InsertChildAt(i-1, x)
				}
			}
		case 7: // y's identifiers onto x
			for _, a := range y.Attr {
				if idAttrNames[a.Key] {
					x.CreateAttr(a.FullKey(), a.Value)
				}
			}
		case 8: // remove an attribute of x
			if len(x.Attr) > 0 {
				a := x.Attr[int(ops[2])%len(x.Attr)]
				x.RemoveAttr(a.FullKey())
			}
		case 9: // y's text, or an attacker's, as x's
			text := y.Text()
			if text == x.Text() {
				text = "ATTACKER"
			}
			x.SetText(text)
		case 10: // a comment in x
			x.CreateComment("ATTACKER")
		case 11: // x rebinds y's prefix
			if y.Space == "" {
				x.CreateAttr("xmlns", "urn:attacker")
			} else {
				x.CreateAttr("xmlns:"+y.Space, "urn:attacker")
			}
		case 12: // x renamed as y
			x.Space, x.Tag = y.Space, y.Tag
		}
	}
	out, err := doc.WriteToBytes()
	if err != nil {
		return raw
	}
	return out
}

// within reports whether el is anc or inside it.
func within(el, anc *etree.Element) bool {
	for e := el; e != nil; e = e.Parent() {
		if e == anc {
			return true
		}
	}
	return false
}
