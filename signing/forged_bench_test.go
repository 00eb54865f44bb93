package signing

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing/gost"
)

// BenchmarkForgedChain: what an unauthenticated sender costs the verifier with a request signed
// by a key of its own whose certificate names a trusted root as its issuer (the root's name is
// public), but was issued by a look-alike: the chain fails on the issuer's signature over the
// certificate, one signature verification of the root's algorithm, whatever the envelope's size.
// The sender pays a key generation once, and nothing per request. Reported per envelope (ms/op)
// and per KB of it, beside the README's bound for hostile envelopes; docs/benchmarks.md records a
// run.
func BenchmarkForgedChain(b *testing.B) {
	now := fixture.now
	run := func(b *testing.B, v *Verifier, s *Signer) {
		raw := signedRequestBytes(b, s)
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if err := readAndVerify(v, raw, soap.Limits{}); err == nil {
				b.Fatal("a request under a forged chain was accepted")
			}
		}
		perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(perOp/1e6/(float64(len(raw))/1024), "ms/KB")
	}
	for _, alg := range gostAlgorithms {
		b.Run("GOST-"+alg.String(), func(b *testing.B) {
			f := gostPKI(b, alg)
			lookAlike := gostCert(b, alg, gostCATemplate(f.root.cert.Subject.CommonName, now), nil)
			user := gostCert(b, alg, gostUserTemplate(now), &lookAlike)
			s, err := NewSigner(user.cert, user.key)
			if err != nil {
				b.Fatal(err)
			}
			run(b, mustVerifier(b, VerifierConfig{Trust: f.trust}), s)
		})
	}
	b.Run("RSA-2048", func(b *testing.B) {
		root := fixture.trust.Roots()[0]
		lookAlikeKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		tmpl := gostCATemplate(root.Subject.CommonName, now)
		tmpl.Subject = root.Subject
		tmpl.SerialNumber = root.SerialNumber
		lookAlikeDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &lookAlikeKey.PublicKey, lookAlikeKey)
		if err != nil {
			b.Fatal(err)
		}
		lookAlike, err := x509.ParseCertificate(lookAlikeDER)
		if err != nil {
			b.Fatal(err)
		}
		userKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		userTmpl := gostUserTemplate(now)
		userTmpl.SerialNumber = lookAlike.SerialNumber
		userDER, err := x509.CreateCertificate(rand.Reader, userTmpl, lookAlike, &userKey.PublicKey, lookAlikeKey)
		if err != nil {
			b.Fatal(err)
		}
		userCert, err := x509.ParseCertificate(userDER)
		if err != nil {
			b.Fatal(err)
		}
		s, err := NewSigner(userCert, userKey)
		if err != nil {
			b.Fatal(err)
		}
		run(b, mustVerifier(b, VerifierConfig{Trust: fixture.trust}), s)
	})
}

// signedRequestBytes is testdata's request.xml signed by s in the WS-Security placement, as sent.
func signedRequestBytes(b *testing.B, s *Signer) []byte {
	b.Helper()
	doc := loadDoc(b, "request.xml")
	if err := s.Sign(doc, PlacementWSSE); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkKnownSigner: a request of a signer whose certificate the verifier has seen, valid, as
// most requests are; beside BenchmarkForgedChain, what a request costs that passes.
func BenchmarkKnownSigner(b *testing.B) {
	run := func(b *testing.B, v *Verifier, s *Signer) {
		raw := signedRequestBytes(b, s)
		for b.Loop() {
			if err := readAndVerify(v, raw, soap.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, alg := range []gost.KeyAlgorithm{gost.KZ2004, gost.KZ2015_256, gost.KZ2015_512} {
		b.Run("GOST-"+alg.String(), func(b *testing.B) {
			f := gostPKI(b, alg)
			run(b, mustVerifier(b, VerifierConfig{Trust: f.trust}), f.user)
		})
	}
	b.Run("RSA-2048", func(b *testing.B) {
		run(b, mustVerifier(b, VerifierConfig{Trust: fixture.trust}), signer(b, "valid/rsa"))
	})
}
