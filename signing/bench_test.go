package signing

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker/schemas/soap"
)

// BenchmarkVerifyAndSign is the crypto baseline of one request: verify a signed request (WS-Security,
// RSA-2048) and sign a reply. The broker's throughput is reported as a ratio to it.
func BenchmarkVerifyAndSign(b *testing.B) {
	user, broker := fixture.signers["valid/rsa"], fixture.broker
	read := func(name string) *etree.Document {
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(filepath.Join("..", "testdata", "signing", name)); err != nil {
			b.Fatal(err)
		}
		return doc
	}
	req := read("request.xml")
	if err := user.Sign(req, PlacementWSSE); err != nil {
		b.Fatal(err)
	}
	raw, err := req.WriteToBytes()
	if err != nil {
		b.Fatal(err)
	}
	reply := read("response.xml")
	v := mustVerifier(b, VerifierConfig{Trust: fixture.trust})
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for b.Loop() {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(raw); err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), doc, fixture.now); err != nil {
			b.Fatal(err)
		}
		out := reply.Copy()
		if err := broker.Sign(out, PlacementWSSE); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadAndVerify is the broker's verify stage for one request as the load tool sends it
// (ECDSA P-256, WS-Security): the envelope read under the default limits, the tree built, the
// signature verified. Its allocations are most of what a request allocates before it is admitted.
func BenchmarkReadAndVerify(b *testing.B) {
	req := etree.NewDocument()
	if err := req.ReadFromFile(filepath.Join("..", "testdata", "signing", "request.xml")); err != nil {
		b.Fatal(err)
	}
	if err := fixture.signers["valid/ecdsa"].Sign(req, PlacementWSSE); err != nil {
		b.Fatal(err)
	}
	raw, err := req.WriteToBytes()
	if err != nil {
		b.Fatal(err)
	}
	v := mustVerifier(b, VerifierConfig{Trust: fixture.trust})
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := readAndVerify(v, raw, soap.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
