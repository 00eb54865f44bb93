package signing

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker/schemas/soap"
)

// This file generates hostile envelopes that stay within the size limit (soap.DefaultMaxBytes) and
// measures what refusing or answering them costs: the issue 16 shapes of CPU amplification before
// authentication.

// hostileShape adds hostile content to an unsigned request: to its Envelope (env) and to the
// signed query (query).
type hostileShape struct {
	name  string
	build func(env, query *etree.Element)
}

// hostileShapes are the worst cases, each about 300 KB.
var hostileShapes = []hostileShape{
	// The penetration test's envelope: 10,000 declarations on the Envelope and 5,000 children of
	// the Body each declaring one more; every declaring element used to copy the whole map.
	{"issue16", func(env, query *etree.Element) {
		for i := range 10000 {
			env.CreateAttr(fmt.Sprintf("xmlns:n%d", i), fmt.Sprintf("u:%d", i))
		}
		for i := range 5000 {
			query.CreateElement("q:c").CreateAttr(fmt.Sprintf("xmlns:m%d", i), "u:")
		}
	}},
	// Every declaration on one element.
	{"decls-one-element", func(env, _ *etree.Element) {
		for i := range 14000 {
			env.CreateAttr(fmt.Sprintf("xmlns:n%d", i), fmt.Sprintf("u:%d", i))
		}
	}},
	// Nesting to the depth limit, every level declaring as many namespaces as the size allows.
	{"deep-declaring", func(_, query *etree.Element) {
		el := query
		for d := range soap.DefaultMaxDepth - 10 {
			el = el.CreateElement("q:d")
			for i := range 180 {
				el.CreateAttr(fmt.Sprintf("xmlns:d%d_%d", d, i), "u:")
			}
		}
	}},
	// One element with as many attributes as the size allows.
	{"attributes", func(_, query *etree.Element) {
		el := query.CreateElement("q:a")
		for i := range 30000 {
			el.CreateAttr(fmt.Sprintf("a%d", i), "v")
		}
	}},
	// Names as long as the size allows.
	{"long-names", func(_, query *etree.Element) {
		el := query.CreateElement("q:" + strings.Repeat("n", 100000))
		el.CreateAttr(strings.Repeat("a", 100000), "v")
		el.CreateAttr("xmlns:"+strings.Repeat("p", 50000), "u:")
	}},
	// As many elements as the element limit allows, each declaring a namespace.
	{"elements-declaring", func(_, query *etree.Element) {
		for range 10000 {
			query.CreateElement("q:e").CreateAttr("xmlns:e", "u:")
		}
	}},
	// A long attribute value and a long text.
	{"long-text", func(_, query *etree.Element) {
		query.CreateElement("q:t").CreateAttr("v", strings.Repeat("v", 150000))
		query.CreateElement("q:t").SetText(strings.Repeat("t", 150000))
	}},
}

// hostileVariants are how an attacker presents a hostile envelope: unsigned, signed with a
// SignatureValue that does not verify, signed with a certificate the broker does not trust, or
// validly signed and then altered (the last is the only one whose References are digested).
var hostileVariants = []string{"unsigned", "bad-signature-value", "untrusted-certificate", "altered-after-signing"}

// hostileEnvelope returns the serialised request of shape presented as variant.
func hostileEnvelope(t testing.TB, shape hostileShape, variant string) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(filepath.Join("..", "testdata", "signing", "request.xml")); err != nil {
		t.Fatal(err)
	}
	query := doc.FindElement("//query")
	shape.build(doc.Root(), query)
	switch variant {
	case "unsigned":
	case "bad-signature-value", "altered-after-signing":
		if err := fixture.signers["valid/rsa"].Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
	case "untrusted-certificate":
		if err := fixture.foreign.Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown variant %q", variant)
	}
	if variant == "bad-signature-value" {
		sv := doc.FindElement("//SignatureValue")
		text := []byte(sv.Text())
		text[0] ^= 'A' ^ 'B'
		sv.SetText(string(text))
	}
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	if variant == "altered-after-signing" {
		altered := bytes.Replace(raw, []byte("<q:basis>1<"), []byte("<q:basis>2<"), 1)
		if bytes.Equal(altered, raw) {
			t.Fatal("nothing to alter")
		}
		raw = altered
	}
	if len(raw) > soap.DefaultMaxBytes {
		t.Fatalf("%s/%s is %d bytes, over the size limit", shape.name, variant, len(raw))
	}
	return raw
}

// readAndVerify is what the broker does with an envelope before it knows who sent it: read it
// under the default limits, then verify its signature.
func readAndVerify(v *Verifier, raw []byte) error {
	doc, _, err := soap.ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8", soap.Limits{})
	if err != nil {
		return err
	}
	_, err = v.Verify(context.Background(), doc, fixture.now)
	return err
}

// BenchmarkHostileEnvelopes measures the CPU that refusing each worst case costs, reported as
// ms/KB (milliseconds per KiB of envelope; one goroutine, so wall time is CPU time).
func BenchmarkHostileEnvelopes(b *testing.B) {
	v := mustVerifier(b, VerifierConfig{Trust: fixture.trust})
	for _, shape := range hostileShapes {
		for _, variant := range hostileVariants {
			raw := hostileEnvelope(b, shape, variant)
			b.Run(shape.name+"/"+variant, func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					if err := readAndVerify(v, raw); err == nil {
						b.Fatal("a hostile envelope was accepted")
					}
				}
				perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(perOp/1e6/(float64(len(raw))/1024), "ms/KB")
			})
		}
	}
}
