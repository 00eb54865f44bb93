package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// usagePKI is a root and leaf certificates of every kind, each with a registered user's IIN, to
// sign requests with. ECDSA keeps it fast.
type usagePKI struct {
	trust   *TrustStore
	signers map[string]*Signer
}

// oidNCAIndividual is the NCA's OID for an individual holder, which its signing and its
// authentication certificates both carry.
var oidNCAIndividual = asn1.ObjectIdentifier{1, 2, 398, 3, 3, 4, 1, 1}

func newUsagePKI(t *testing.T, now time.Time) *usagePKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usage test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	trust, err := NewTrustStore([]*x509.Certificate{ca}, nil)
	if err != nil {
		t.Fatal(err)
	}
	iin, _ := siobroker.CompleteIIN("75031230045")
	p := &usagePKI{trust: trust, signers: map[string]*Signer{}}
	for i, tc := range []struct {
		name string
		tmpl x509.Certificate
	}{
		// The NCA's signing profile: digitalSignature, nonRepudiation, emailProtection.
		{"signing", x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidNCAIndividual}}},
		// digitalSignature alone and no extended key usage extension: a signer unless
		// nonRepudiation is required.
		{"digitalSignature only", x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature}},
		// A CA's certificate under the root, with a person's IIN and every signing usage.
		{"CA", x509.Certificate{IsCA: true, BasicConstraintsValid: true,
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageCertSign,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}},
		// What the penetration test signed with: keyEncipherment and serverAuth only.
		{"TLS server", x509.Certificate{KeyUsage: x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}},
		// The NCA's authentication profile: digitalSignature and keyEncipherment, clientAuth.
		{"authentication", x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidNCAIndividual}}},
		// Every signing key usage, but an extended key usage that is not a signing one.
		{"code signing", x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}},
		{"no key usage", x509.Certificate{}},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := tc.tmpl
		tmpl.SerialNumber = big.NewInt(int64(10 + i))
		tmpl.Subject = pkix.Name{CommonName: "ИВАНОВ ИВАН (" + tc.name + ")", SerialNumber: "IIN" + iin}
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(12*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		s, err := NewSigner(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		p.signers[tc.name] = s
	}
	return p
}

// TestKeyUsageOfRequestSigners: a certificate that chains to a trusted root and carries a
// registered IIN, but is not meant to sign requests, is refused with SIO-CERT-USAGE, in both
// placements; the NCA's signing profile passes. Before SignerUsage all of them were accepted.
func TestKeyUsageOfRequestSigners(t *testing.T) {
	now := time.Now()
	pki := newUsagePKI(t, now)
	for _, tc := range []struct {
		signer string
		usage  SignerUsage
		msg    string // "" when the signature verifies
	}{
		{"signing", SignerUsage{}, ""},
		{"signing", SignerUsage{RequireNonRepudiation: true}, ""},
		{"digitalSignature only", SignerUsage{}, ""},
		{"digitalSignature only", SignerUsage{RequireNonRepudiation: true}, "lacks the nonRepudiation key usage"},
		{"CA", SignerUsage{}, "is a CA certificate"},
		{"TLS server", SignerUsage{}, "lacks the digitalSignature key usage (it has keyEncipherment)"},
		{"authentication", SignerUsage{}, "has the extended key usages clientAuth, 1.2.398.3.3.4.1.1 and none of the signing ones (1.3.6.1.5.5.7.3.4)"},
		{"authentication", SignerUsage{SigningEKUs: []string{OIDEmailProtection, OIDClientAuth}}, ""},
		{"code signing", SignerUsage{}, "has the extended key usages codeSigning and none"},
		{"no key usage", SignerUsage{}, "(it has no key usage extension)"},
	} {
		for _, p := range []Placement{PlacementWSSE, PlacementEnveloped} {
			name := tc.signer + "/" + string(p)
			if tc.usage.RequireNonRepudiation || tc.usage.SigningEKUs != nil {
				name += "/configured"
			}
			t.Run(name, func(t *testing.T) {
				doc := loadDoc(t, "request.xml")
				if err := pki.signers[tc.signer].Sign(doc, p); err != nil {
					t.Fatal(err)
				}
				v, err := mustVerifier(t, VerifierConfig{Trust: pki.trust, Usage: tc.usage}).Verify(context.Background(), reparse(t, doc), now)
				if tc.msg == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				wantRefusal(t, v, err, siobroker.CodeCertUsage, tc.msg)
			})
		}
	}
}

// TestReplyVerifierSkipsKeyUsage: the broker's certificate, a TLS certificate, still verifies the
// broker's replies for its clients.
func TestReplyVerifierSkipsKeyUsage(t *testing.T) {
	doc := loadDoc(t, "response.xml")
	if err := fixture.broker.Sign(doc, PlacementWSSE); err != nil {
		t.Fatal(err)
	}
	v, err := NewReplyVerifier(fixture.trust)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), reparse(t, doc), fixture.now); err != nil {
		t.Fatalf("the broker's reply: %v", err)
	}
	if err := (SignerUsage{}).Check(fixture.broker.Certificate()); siobroker.ErrorCode(err) != siobroker.CodeCertUsage {
		t.Errorf("the broker's TLS certificate as a request signer: %v, want %s", err, siobroker.CodeCertUsage)
	}
}

// TestDevPKIUsersAreSigners: the development PKI issues its users the NCA's signing profile, so
// that they pass the strictest policy; the shipped interoperability certificates pass the default.
func TestDevPKIUsersAreSigners(t *testing.T) {
	strict := SignerUsage{RequireNonRepudiation: true}
	for _, u := range fixture.manifest.Users {
		certs, err := LoadCertificates(filepath.Join(fixture.dir, u.Cert))
		if err != nil {
			t.Fatal(err)
		}
		if err := strict.Check(certs[0]); err != nil {
			t.Errorf("development user %s: %v", u.IIN, err)
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "signing", "interop", "pki", "[0-9]*.pem"))
	if err != nil || len(files) == 0 {
		t.Fatalf("interop certificates: %v, %d files", err, len(files))
	}
	for _, f := range files {
		certs, err := LoadCertificates(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := strict.Check(certs[0]); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSignerUsageValidate(t *testing.T) {
	good := SignerUsage{SigningEKUs: []string{OIDEmailProtection, "1.2.398.3.3.4.1.2.2"}}
	if err := good.Validate(); err != nil {
		t.Errorf("%v", err)
	}
	for _, bad := range []string{"", "1", "1..2", "3.1", "1.a", "1.-2", "1.02", " 1.2", "1.+2"} {
		err := SignerUsage{SigningEKUs: []string{OIDEmailProtection, bad}}.Validate()
		if err == nil || !strings.Contains(err.Error(), "SigningEKUs[1]") {
			t.Errorf("%q: %v, want an error naming SigningEKUs[1]", bad, err)
		}
	}
	if _, err := NewVerifier(VerifierConfig{Trust: fixture.trust, Usage: SignerUsage{SigningEKUs: []string{"x"}}}); err == nil {
		t.Error("NewVerifier took an OID that is not one")
	}
}
