package signing

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// Interoperability with xmlsec1 (Debian package xmlsec1 1.2.x, OpenSSL backend). The commands, for
// the README, with ca.pem from the development PKI. xmlsec1 1.2 has no option to load a CRL
// (--crl-pem arrived in 1.3), so it does not see revocations; the broker does.
//
// Verify a wsse (header) signature over the Body:
//
//	xmlsec1 --verify --trusted-pem ca.pem \
//	    --id-attr:Id http://schemas.xmlsoap.org/soap/envelope/:Body envelope.xml
//
// Verify an enveloped signature of a request (q:query) or a reply (q:result):
//
//	xmlsec1 --verify --trusted-pem ca.pem \
//	    --id-attr:Id urn:kz:sio-pso:broker:v1:query envelope.xml
//	xmlsec1 --verify --trusted-pem ca.pem \
//	    --id-attr:Id urn:kz:sio-pso:broker:v1:result envelope.xml
//
// Sign a template (testdata/signing/*-template.xml) with a user's key:
//
//	xmlsec1 --sign --privkey-pem users/IIN.key,users/IIN.pem \
//	    --id-attr:Id http://schemas.xmlsoap.org/soap/envelope/:Body \
//	    --output signed.xml wsse-template.xml
//	xmlsec1 --sign --privkey-pem users/IIN.key,users/IIN.pem \
//	    --id-attr:Id urn:kz:sio-pso:broker:v1:query \
//	    --output signed.xml enveloped-template.xml

const (
	xmlsecBodyID   = "http://schemas.xmlsoap.org/soap/envelope/:Body"
	xmlsecQueryID  = "urn:kz:sio-pso:broker:v1:query"
	xmlsecResultID = "urn:kz:sio-pso:broker:v1:result"
)

// xmlsec1 returns the path of the xmlsec1 binary. In CI (CI=true) a missing binary fails the test
// rather than skipping it, so that interoperability is never silently untested.
func xmlsec1(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmlsec1")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("xmlsec1 is required in CI (apt-get install xmlsec1): %v", err)
		}
		t.Skipf("xmlsec1 not installed: %v", err)
	}
	return path
}

func runXmlsec(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(xmlsec1(t), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeDoc(t *testing.T, doc *etree.Document) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envelope.xml")
	if err := doc.WriteToFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkiPath(rel string) string { return filepath.Join(fixture.dir, rel) }

func TestXmlsecVerifiesOurSignatures(t *testing.T) {
	for _, tc := range []struct {
		file      string
		placement Placement
		user      string
		idAttr    string
	}{
		{"request.xml", PlacementWSSE, "valid/rsa", xmlsecBodyID},
		{"request.xml", PlacementWSSE, "valid/ecdsa", xmlsecBodyID},
		{"response.xml", PlacementWSSE, "valid/rsa", xmlsecBodyID},
		{"request.xml", PlacementEnveloped, "valid/rsa", xmlsecQueryID},
		{"request.xml", PlacementEnveloped, "valid/ecdsa", xmlsecQueryID},
		{"response.xml", PlacementEnveloped, "valid/rsa", xmlsecResultID},
		{"response.xml", PlacementEnveloped, "valid/ecdsa", xmlsecResultID},
	} {
		t.Run(tc.file+"/"+string(tc.placement)+"/"+tc.user, func(t *testing.T) {
			xmlsec1(t)
			doc := loadDoc(t, tc.file)
			if err := signer(t, tc.user).Sign(doc, tc.placement); err != nil {
				t.Fatal(err)
			}
			file := writeDoc(t, doc)
			args := []string{"--verify", "--trusted-pem", pkiPath(fixture.manifest.CA), "--id-attr:Id", tc.idAttr, file}
			if out, err := runXmlsec(t, args...); err != nil {
				t.Fatalf("xmlsec1 refused our signature: %v\n%s", err, out)
			}
			// And xmlsec1 really checks: a tampered copy must fail.
			doc.FindElement("//q:subject/q:iin").SetText("900114302034")
			file = writeDoc(t, doc)
			args[len(args)-1] = file
			if out, err := runXmlsec(t, args...); err == nil {
				t.Fatalf("xmlsec1 accepted a tampered document:\n%s", out)
			}
		})
	}
}

func TestWeVerifyXmlsecSignatures(t *testing.T) {
	for _, tc := range []struct {
		template  string
		placement Placement
		user      string
		idAttr    string
		inclusive bool // rewrite the template to inclusive C14N 1.0
	}{
		{"wsse-template.xml", PlacementWSSE, "valid/rsa", xmlsecBodyID, false},
		{"wsse-template.xml", PlacementWSSE, "valid/ecdsa", xmlsecBodyID, false},
		{"wsse-template.xml", PlacementWSSE, "valid/rsa", xmlsecBodyID, true},
		{"enveloped-template.xml", PlacementEnveloped, "valid/rsa", xmlsecQueryID, false},
		{"enveloped-template.xml", PlacementEnveloped, "valid/ecdsa", xmlsecQueryID, false},
		{"enveloped-template.xml", PlacementEnveloped, "valid/ecdsa", xmlsecQueryID, true},
	} {
		name := tc.template + "/" + tc.user
		if tc.inclusive {
			name += "/c14n10"
		}
		t.Run(name, func(t *testing.T) {
			xmlsec1(t)
			tmpl, err := os.ReadFile(filepath.Join("..", "testdata", "signing", tc.template))
			if err != nil {
				t.Fatal(err)
			}
			u := fixture.users[tc.user]
			if u.KeyType == "ecdsa" {
				tmpl = []byte(strings.ReplaceAll(string(tmpl), AlgRSASHA256, AlgECDSASHA256))
			}
			if tc.inclusive {
				tmpl = []byte(strings.ReplaceAll(string(tmpl), AlgExcC14N, AlgC14N10))
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, "template.xml"), filepath.Join(dir, "signed.xml")
			if err := os.WriteFile(in, tmpl, 0o600); err != nil {
				t.Fatal(err)
			}
			if msg, err := runXmlsec(t, "--sign", "--privkey-pem", pkiPath(u.Key)+","+pkiPath(u.Cert),
				"--id-attr:Id", tc.idAttr, "--output", out, in); err != nil {
				t.Fatalf("xmlsec1 --sign: %v\n%s", err, msg)
			}
			doc := etree.NewDocument()
			if err := doc.ReadFromFile(out); err != nil {
				t.Fatal(err)
			}
			v, err := verify(t, doc)
			if err != nil {
				signed, _ := os.ReadFile(out)
				t.Fatalf("xmlsec1's signature refused: %v\n%s", err, signed)
			}
			if v.Placement != tc.placement || v.SignerIIN != u.IIN {
				t.Errorf("got %s signed by %s, want %s by %s", v.Placement, v.SignerIIN, tc.placement, u.IIN)
			}
			if !strings.Contains(elementString(v.Signed), "Подписано xmlsec1 &amp; проверено брокером") {
				t.Errorf("Signed lost its content: %s", elementString(v.Signed))
			}
		})
	}
}
