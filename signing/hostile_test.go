package signing

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// This file generates hostile envelopes that stay within the size limit (soap.DefaultMaxBytes) and
// measures what refusing or answering them costs: the issue 16 shapes of CPU amplification before
// authentication.

// hostileShape adds hostile content to an unsigned request: to its Envelope (env) and to the
// signed query (query). div divides every count and length: 1 for the worst cases; FuzzVerify's
// seeds keep each shape at a size the fuzzer mutates quickly.
type hostileShape struct {
	name  string
	build func(env, query *etree.Element, div int)
}

// hostileShapes are the worst cases, each about 300 KB.
var hostileShapes = []hostileShape{
	// The penetration test's envelope: 10,000 declarations on the Envelope and 5,000 children of
	// the Body each declaring one more; every declaring element used to copy the whole map.
	{"issue16", func(env, query *etree.Element, div int) {
		for i := range 10000 / div {
			addAttr(env, fmt.Sprintf("xmlns:n%d", i), fmt.Sprintf("u:%d", i))
		}
		for i := range 5000 / div {
			addAttr(query.CreateElement("q:c"), fmt.Sprintf("xmlns:m%d", i), "u:")
		}
	}},
	// Every declaration on one element.
	{"decls-one-element", func(env, _ *etree.Element, div int) {
		for i := range 14000 / div {
			addAttr(env, fmt.Sprintf("xmlns:n%d", i), fmt.Sprintf("u:%d", i))
		}
	}},
	// Nesting to the depth limit, every level declaring as many namespaces as the size allows.
	{"deep-declaring", func(_, query *etree.Element, div int) {
		el := query
		for d := range soap.DefaultMaxDepth - 10 {
			el = el.CreateElement("q:d")
			for i := range 180 / div {
				addAttr(el, fmt.Sprintf("xmlns:d%d_%d", d, i), "u:")
			}
		}
	}},
	// One element with as many attributes as the size allows.
	{"attributes", func(_, query *etree.Element, div int) {
		el := query.CreateElement("q:a")
		for i := range 30000 / div {
			addAttr(el, fmt.Sprintf("a%d", i), "v")
		}
	}},
	// Names as long as the size allows.
	{"long-names", func(_, query *etree.Element, div int) {
		el := query.CreateElement("q:" + strings.Repeat("n", 100000/div))
		addAttr(el, strings.Repeat("a", 100000/div), "v")
		addAttr(el, "xmlns:"+strings.Repeat("p", 50000/div), "u:")
	}},
	// As many elements as the element limit allows, each declaring a namespace.
	{"elements-declaring", func(_, query *etree.Element, div int) {
		for range 10000 / div {
			addAttr(query.CreateElement("q:e"), "xmlns:e", "u:")
		}
	}},
	// A long attribute value and a long text.
	{"long-text", func(_, query *etree.Element, div int) {
		addAttr(query.CreateElement("q:t"), "v", strings.Repeat("v", 150000/div))
		query.CreateElement("q:t").SetText(strings.Repeat("t", 150000/div))
	}},
}

// hostileVariants are how an attacker presents a hostile envelope: unsigned, signed with a
// SignatureValue that does not verify, signed with a certificate the broker does not trust, or
// validly signed and then altered (the last is the only one whose References are digested).
var hostileVariants = []string{"unsigned", "bad-signature-value", "untrusted-certificate", "altered-after-signing"}

// addAttr appends an attribute without etree.CreateAttr's search for an existing one, which is
// quadratic in the attributes of an element. The generators never repeat a name.
func addAttr(el *etree.Element, key, value string) {
	space, local, ok := strings.Cut(key, ":")
	if !ok {
		space, local = "", key
	}
	el.Attr = append(el.Attr, etree.Attr{Space: space, Key: local, Value: value})
}

// hostileCache keeps each generated envelope: signing 30,000 attributes takes a second or two.
var hostileCache sync.Map // shape/variant -> []byte

// hostileEnvelope returns the serialised request of shape presented as variant.
func hostileEnvelope(t testing.TB, shape hostileShape, variant string) []byte {
	t.Helper()
	key := shape.name + "/" + variant
	if raw, ok := hostileCache.Load(key); ok {
		return raw.([]byte)
	}
	raw := buildHostile(t, shape, variant, 1, fixture.signers["valid/rsa"], fixture.foreign)
	if len(raw) > soap.DefaultMaxBytes {
		t.Fatalf("%s/%s is %d bytes, over the size limit", shape.name, variant, len(raw))
	}
	hostileCache.Store(key, raw)
	return raw
}

// buildHostile builds the request of shape, its counts divided by div, presented as variant:
// signed by trusted or, for "untrusted-certificate", by foreign.
func buildHostile(t testing.TB, shape hostileShape, variant string, div int, trusted, foreign *Signer) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(filepath.Join("..", "testdata", "signing", "request.xml")); err != nil {
		t.Fatal(err)
	}
	query := doc.FindElement("//query")
	shape.build(doc.Root(), query, div)
	switch variant {
	case "unsigned":
	case "bad-signature-value", "altered-after-signing":
		if err := trusted.Sign(doc, PlacementWSSE); err != nil {
			t.Fatal(err)
		}
	case "untrusted-certificate":
		if err := foreign.Sign(doc, PlacementWSSE); err != nil {
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
	return raw
}

// laxLimits keep the size, and lift everything else out of the way, so that a hostile envelope
// reaches the verifier: what it costs there is bounded too, should an operator raise the limits.
var laxLimits = soap.Limits{
	MaxBytes: soap.DefaultMaxBytes, MaxDepth: 1000, MaxElements: 1 << 20,
	MaxAttributes: 1 << 20, MaxNamespaceDecls: 1 << 20, MaxNamespaceDeclsTotal: 1 << 20,
	MaxNameBytes: 1 << 20, MaxAttrValueBytes: 1 << 20,
}

// readAndVerify is what the broker does with an envelope before it knows who sent it: read it
// under lim, then verify its signature.
func readAndVerify(v *Verifier, raw []byte, lim soap.Limits) error {
	doc, _, err := soap.ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8", lim)
	if err != nil {
		return err
	}
	_, err = v.Verify(context.Background(), doc, fixture.now)
	return err
}

// TestHostileEnvelopes: every worst case is refused, under the default limits by the reader; and with the limits lifted, the work the verifier does is what the order of work and
// the linear canonicalisation promise, counted rather than timed.
func TestHostileEnvelopes(t *testing.T) {
	var digested []*etree.Element
	v := mustVerifier(t, VerifierConfig{Trust: fixture.trust})
	v.onDigest = func(el *etree.Element) { digested = append(digested, el) }
	for _, shape := range hostileShapes {
		for _, variant := range hostileVariants {
			t.Run(shape.name+"/"+variant, func(t *testing.T) {
				raw := hostileEnvelope(t, shape, variant)
				digested = nil
				err := readAndVerify(v, raw, soap.Limits{})
				if got := siobroker.ErrorCode(err); got != siobroker.CodeTooDeep {
					t.Fatalf("default limits: code %s, want %s (%v)", got, siobroker.CodeTooDeep, err)
				}
				if len(digested) != 0 {
					t.Fatal("default limits: something was digested")
				}

				digested = nil
				if err := readAndVerify(v, raw, laxLimits); err == nil {
					t.Fatal("lax limits: a hostile envelope was accepted")
				}
				if variant != "altered-after-signing" {
					if len(digested) != 0 {
						t.Fatalf("lax limits: %d References digested before the signer was known", len(digested))
					}
					return
				}
				if len(digested) == 0 || digested[len(digested)-1].Tag != "Body" {
					t.Fatalf("lax limits: digested %d elements, want the Body last", len(digested))
				}
			})
		}
	}
}

// TestHostileCanonicalisationIsLinear: canonicalising the Body of each worst case takes a number
// of steps (namespace bindings pushed, prefixes considered) within a small multiple of the
// document's attributes and elements. Copying the namespace map per declaring element took
// 50 million for the envelope.
func TestHostileCanonicalisationIsLinear(t *testing.T) {
	for _, shape := range hostileShapes {
		t.Run(shape.name, func(t *testing.T) {
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(hostileEnvelope(t, shape, "unsigned")); err != nil {
				t.Fatal(err)
			}
			size := 0
			var count func(el *etree.Element)
			count = func(el *etree.Element) {
				size += 1 + len(el.Attr)
				for _, c := range el.ChildElements() {
					count(c)
				}
			}
			count(doc.Root())
			body := doc.FindElement("/Envelope/Body")
			for _, m := range []c14nMethod{{exclusive: true}, {exclusive: false}} {
				_, steps, err := canonicalizeCounting(body, m, "", nil)
				if err != nil {
					t.Fatal(err)
				}
				if steps > 4*size {
					t.Errorf("exclusive %v: %d steps for %d elements and attributes, want at most %d", m.exclusive, steps, size, 4*size)
				}
			}
		})
	}
}

// The allocations of reading and verifying a worst case with the limits lifted, per KB of
// envelope: measured at most 1,064 allocations (elements-declaring: etree allocates per element
// and attribute) and 102 KB (attributes) on 7 December 2026. Copying the namespace map per
// declaring element allocated, by estimate, some GB for the envelope (5,000 copies of a
// 10,000-entry map).
const (
	maxAllocsPerKB = 1500
	maxBytesPerKB  = 160 << 10
)

// TestHostileAllocations: allocations and bytes allocated per KB of envelope stay under
// maxAllocsPerKB and maxBytesPerKB for every worst case, with the limits lifted and a valid
// signature over altered content, the variant that digests the Body. Both are counts, not times.
func TestHostileAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("reads each worst case several times")
	}
	v := mustVerifier(t, VerifierConfig{Trust: fixture.trust})
	for _, shape := range hostileShapes {
		t.Run(shape.name, func(t *testing.T) {
			raw := hostileEnvelope(t, shape, "altered-after-signing")
			run := func() {
				if readAndVerify(v, raw, laxLimits) == nil {
					t.Fatal("accepted")
				}
			}
			allocs := testing.AllocsPerRun(2, run)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			run()
			runtime.ReadMemStats(&after)
			kb := float64(len(raw)) / 1024
			perKB, bytesPerKB := allocs/kb, float64(after.TotalAlloc-before.TotalAlloc)/kb
			t.Logf("%.0f allocations, %.1f per KB; %.0f bytes per KB", allocs, perKB, bytesPerKB)
			if perKB > maxAllocsPerKB {
				t.Errorf("%.1f allocations per KB, want at most %d", perKB, maxAllocsPerKB)
			}
			if bytesPerKB > maxBytesPerKB {
				t.Errorf("%.0f bytes allocated per KB, want at most %d", bytesPerKB, maxBytesPerKB)
			}
		})
	}
}

// BenchmarkHostileEnvelopes measures the CPU that refusing each worst case costs, reported as
// ms/KB (milliseconds per KiB of envelope; one goroutine, so wall time is CPU time): under the
// default limits, where the reader refuses them, and with the limits lifted, where the verifier
// does.
func BenchmarkHostileEnvelopes(b *testing.B) {
	v := mustVerifier(b, VerifierConfig{Trust: fixture.trust})
	run := func(name string, raw []byte, lim soap.Limits) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if err := readAndVerify(v, raw, lim); err == nil {
					b.Fatal("a hostile envelope was accepted")
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp/1e6/(float64(len(raw))/1024), "ms/KB")
		})
	}
	for _, shape := range hostileShapes {
		// Under the default limits the variant makes no difference: the reader refuses first.
		run("default/"+shape.name, hostileEnvelope(b, shape, "altered-after-signing"), soap.Limits{})
		for _, variant := range []string{"unsigned", "bad-signature-value", "altered-after-signing"} {
			run("lax/"+shape.name+"/"+variant, hostileEnvelope(b, shape, variant), laxLimits)
		}
	}
}
