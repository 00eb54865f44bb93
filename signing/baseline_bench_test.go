package signing

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// The throughput baselines of the load benchmark (scripts/bench.sh): verify a signed request and
// sign a reply of the same size, RSA-2048, on every core (b.RunParallel; run them with -cpu set to
// the cores the broker has). They report ops/s, the figure the broker's requests per second are
// divided by. BenchmarkGoxmldsigVerifyAndSign is the baseline: the same work done by the
// goxmldsig library, which can only verify enveloped signatures, so there the request's q:query is
// signed enveloped; BenchmarkVerifyAndSignParallel is our own signing package on the WS-Security
// placement the load tool sends.

// baselineEnvelopes returns the unsigned request envelope the baselines verify and an unsigned
// reply padded to the same size. SIOBENCH_REQUEST names a request saved by `siobroker load
// --save-request`, so that the baselines work on the envelope the broker was loaded with; its
// signature is removed, because it chains to the run's development PKI, not to this test's.
// Without it, testdata/signing/request.xml.
func baselineEnvelopes(b *testing.B) (request, reply *etree.Document) {
	read := func(path string) *etree.Document {
		doc := etree.NewDocument()
		if err := doc.ReadFromFile(path); err != nil {
			b.Fatal(err)
		}
		return doc
	}
	path := os.Getenv("SIOBENCH_REQUEST")
	if path == "" {
		path = filepath.Join("..", "testdata", "signing", "request.xml")
	}
	request = read(path)
	for _, h := range request.Root().ChildElements() {
		if h.Tag == "Header" {
			request.Root().RemoveChild(h)
		}
	}
	query := signedElement(b, request)
	if sig := firstChildElement(query); is(sig, nsDSig, "Signature") {
		query.RemoveChild(sig)
	}
	reply = read(filepath.Join("..", "testdata", "signing", "response.xml"))
	want, err := request.WriteToBytes()
	if err != nil {
		b.Fatal(err)
	}
	got, err := reply.WriteToBytes()
	if err != nil {
		b.Fatal(err)
	}
	if pad := len(want) - len(got) - 40; pad > 0 {
		record := signedElement(b, reply).FindElement(".//record")
		field := record.CreateElement("q:field")
		field.CreateAttr("name", "note")
		field.SetText(strings.Repeat("x", pad))
	}
	return request, reply
}

// signedElement returns the element the enveloped placement signs: q:query or q:result.
func signedElement(b *testing.B, doc *etree.Document) *etree.Element {
	el, err := dataElementOf(doc)
	if err != nil {
		b.Fatal(err)
	}
	return el
}

func dataElementOf(doc *etree.Document) (*etree.Element, error) {
	_, body, err := envelopeParts(doc)
	if err != nil {
		return nil, err
	}
	return dataElement(body)
}

// BenchmarkGoxmldsigVerifyAndSign: goxmldsig verifies the request's enveloped RSA-2048 signature
// and signs the reply's q:result, RSA-2048, exclusive c14n, on every core.
func BenchmarkGoxmldsigVerifyAndSign(b *testing.B) {
	user, broker := fixture.signers["valid/rsa"], fixture.broker
	context := func(s *Signer) *dsig.SigningContext {
		ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
		if err != nil {
			b.Fatal(err)
		}
		ctx.IdAttribute = "Id"
		ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		return ctx
	}
	userCtx, brokerCtx := context(user), context(broker)
	signIn := func(doc *etree.Document, ctx *dsig.SigningContext) error {
		el, err := dataElementOf(doc)
		if err != nil {
			return err
		}
		signed, err := ctx.SignEnveloped(el)
		if err != nil {
			return err
		}
		el.Parent().InsertChildAt(el.Index(), signed)
		el.Parent().RemoveChild(el)
		return nil
	}
	request, reply := baselineEnvelopes(b)
	if err := signIn(request, userCtx); err != nil {
		b.Fatal(err)
	}
	raw, err := request.WriteToBytes()
	if err != nil {
		b.Fatal(err)
	}
	validator := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{user.cert}})
	validator.IdAttribute = "Id"
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil {
				b.Error(err)
				return
			}
			el, err := dataElementOf(doc)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := validator.Validate(el); err != nil {
				b.Error(err)
				return
			}
			out := reply.Copy()
			if err := signIn(out, brokerCtx); err != nil {
				b.Error(err)
				return
			}
			if _, err := out.WriteToBytes(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRateAndCPU(b, processCPU()-cpu0)
}

// BenchmarkVerifyAndSignParallel is BenchmarkVerifyAndSign on every core, on the baseline
// envelopes: our verifier (chain and CRL included) and signer, WS-Security placement.
func BenchmarkVerifyAndSignParallel(b *testing.B) {
	user, broker := fixture.signers["valid/rsa"], fixture.broker
	request, reply := baselineEnvelopes(b)
	if err := user.Sign(request, PlacementWSSE); err != nil {
		b.Fatal(err)
	}
	raw, err := request.WriteToBytes()
	if err != nil {
		b.Fatal(err)
	}
	v := mustVerifier(b, VerifierConfig{Trust: fixture.trust})
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil {
				b.Error(err)
				return
			}
			if _, err := v.Verify(context.Background(), doc, fixture.now); err != nil {
				b.Error(err)
				return
			}
			out := reply.Copy()
			if err := broker.Sign(out, PlacementWSSE); err != nil {
				b.Error(err)
				return
			}
			if _, err := out.WriteToBytes(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRateAndCPU(b, processCPU()-cpu0)
}

// reportRateAndCPU reports ops/s and the process's CPU milliseconds per operation (cpu is what it
// used over the loop, every goroutine and the garbage collector included, as the broker's CPU per
// request counts them): load's targets compare the broker's CPU per request with the baseline's
// CPU per operation, which other work on the machine does not inflate as it does the wall clock.
func reportRateAndCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
