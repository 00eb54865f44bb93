package signing

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// TestClientEnvelopes verifies requests exactly as real WS-Security clients wrote them
// (testdata/signing/interop, captured from node-soap 1.13.0, zeep 4.2.1 and WSS4J 1.6.19 by the
// programs in interop/clients, signed with a development PKI whose root and user certificates
// are kept beside them). The live interoperability tests run the same clients against a broker;
// these keep each client's exact bytes as a regression test of the verifier alone.
func TestClientEnvelopes(t *testing.T) {
	dir := filepath.Join("..", "testdata", "signing", "interop")
	roots, err := LoadCertificates(filepath.Join(dir, "pki", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	trust, err := NewTrustStore(roots, nil)
	if err != nil {
		t.Fatal(err)
	}
	var users []*x509.Certificate
	for _, iin := range []string{"750312300458", "900114302034"} {
		c, err := LoadCertificates(filepath.Join(dir, "pki", iin+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, c[0])
	}
	for _, tc := range []struct {
		file, iin string
		form      KeyForm
		timestamp bool // the client signs a wsu:Timestamp
	}{
		{"nodesoap-default.xml", "750312300458", KeyTokenRef, true},
		{"zeep-binary.xml", "750312300458", KeyTokenRef, false},
		{"zeep-signature.xml", "750312300458", KeyX509Data, false},
		{"wss4j-bst.xml", "750312300458", KeyTokenRef, true},
		{"wss4j-bst-ecdsa.xml", "900114302034", KeyTokenRef, true},
		{"wss4j-issuerserial.xml", "750312300458", KeyIssuerSerial, true},
		{"wss4j-ski.xml", "750312300458", KeySKI, true},
		{"wss4j-thumbprint.xml", "750312300458", KeyThumbprint, true},
		{"wss4j-x509.xml", "750312300458", KeyInlineX509v3, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil {
				t.Fatal(err)
			}
			at := messageDate(t, doc)
			v, err := mustVerifier(t, VerifierConfig{Trust: trust, Directory: certDirectory{certs: users},
				Timestamps: TimestampPolicy{Clock: fixedClock(at), Skew: time.Minute, Require: tc.timestamp}},
			).Verify(context.Background(), doc, at)
			if err != nil {
				t.Fatal(err)
			}
			want := PlacementWSSEToken
			if tc.timestamp {
				want = PlacementWSSETokenTimestamp
			}
			if v.Placement != want || v.KeyForm != tc.form || v.SignerIIN != tc.iin {
				t.Errorf("placement %s form %s signer %s, want %s %s %s", v.Placement, v.KeyForm, v.SignerIIN, want, tc.form, tc.iin)
			}
			if (v.Timestamp != nil && v.Timestamp.Signed) != tc.timestamp {
				t.Errorf("timestamp %+v", v.Timestamp)
			}
			if !strings.Contains(elementString(v.Signed), "261500031000123") && !strings.Contains(elementString(v.Signed), "query") {
				t.Errorf("the signed Body lost its query: %s", elementString(v.Signed))
			}
			// One byte of the signed query changed, and the envelope is refused.
			tampered := strings.Replace(string(raw), "810803325634", "810803325635", 1)
			if tampered == string(raw) {
				t.Fatal("the fixture holds no subject to tamper with")
			}
			doc = etree.NewDocument()
			if err := doc.ReadFromString(tampered); err != nil {
				t.Fatal(err)
			}
			if _, err := mustVerifier(t, VerifierConfig{Trust: trust, Directory: certDirectory{certs: users}}).Verify(context.Background(), doc, at); err == nil {
				t.Error("a tampered envelope verified")
			}
		})
	}
}

// messageDate reads requestInfo/messageDate, the time the fixture was signed at.
func messageDate(t *testing.T, doc *etree.Document) time.Time {
	t.Helper()
	el := doc.FindElement("//requestInfo/messageDate")
	if el == nil {
		t.Fatal("no messageDate")
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(el.Text()))
	if err != nil {
		t.Fatal(err)
	}
	return at
}
