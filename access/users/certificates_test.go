package users

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/signing"
)

// userCert issues a self-signed certificate whose subject carries the IIN, as НУЦ РК writes it.
func userCert(t *testing.T, iin string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "ИВАНОВ ИВАН", SerialNumber: "IIN" + iin},
		NotBefore: t0.AddDate(0, -1, 0), NotAfter: t0.AddDate(1, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertificates(t *testing.T) {
	ctx := context.Background()
	r, db, clock := setup(t)
	id := iin(t, "75031230045")
	register(t, r, id, true)
	certs := NewCertificates(db, clock, nil)
	first, second := userCert(t, id, 11), userCert(t, id, 12)

	if _, err := certs.Add(ctx, iin(t, "82060540117"), first, siobroker.CertificateRegistered, "operator"); err == nil ||
		!strings.Contains(err.Error(), "not of") {
		t.Fatalf("a certificate of another IIN: %v", err)
	}
	if added, err := certs.Add(ctx, id, first, siobroker.CertificateRegistered, "operator"); err != nil || !added {
		t.Fatalf("Add: %v %v", added, err)
	}
	if added, err := certs.Add(ctx, id, first, siobroker.CertificateRegistered, "operator"); err != nil || added {
		t.Fatalf("Add again: %v %v", added, err)
	}
	u, _, _ := db.User(ctx, id)
	if err := certs.Learn(ctx, u, second); err != nil {
		t.Fatal(err)
	}
	if err := certs.Learn(ctx, u, second); err != nil { // known: no write
		t.Fatal(err)
	}
	held, err := certs.Of(ctx, id)
	if err != nil || len(held) != 2 || held[0].Source != siobroker.CertificateRegistered || held[1].Source != siobroker.CertificateLearnt ||
		held[1].AddedBy != "request" {
		t.Fatalf("held %+v %v", held, err)
	}

	for name, key := range map[string]signing.KeyIdentifier{
		"thumbprint":        {ThumbprintSHA1: signing.ThumbprintSHA1(second)},
		"subject key id":    {SubjectKeyID: signing.SubjectKeyID(second)},
		"issuer and serial": {IssuerName: second.Issuer.String(), SerialNumber: big.NewInt(12)},
	} {
		found, err := certs.LookupCertificates(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var matched int
		for _, c := range found {
			if key.Matches(c) {
				matched++
				if !c.Equal(second) {
					t.Errorf("%s matched %s", name, c.SerialNumber)
				}
			}
		}
		if matched != 1 {
			t.Errorf("%s: %d matching of %d found", name, matched, len(found))
		}
	}
	if found, err := certs.LookupCertificates(ctx, signing.KeyIdentifier{ThumbprintSHA1: make([]byte, 20)}); err != nil || len(found) != 0 {
		t.Errorf("an unknown thumbprint: %d, %v", len(found), err)
	}
}
