package cli

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// Interoperability with xmlsec1, end to end: requests signed by xmlsec1 are answered by the
// broker, and the broker's replies verify with xmlsec1. The commands are those documented in
// signing/xmlsec_test.go.

const (
	xmlsecBodyID   = "http://schemas.xmlsoap.org/soap/envelope/:Body"
	xmlsecQueryID  = "urn:kz:sio-pso:broker:v1:query"
	xmlsecResultID = "urn:kz:sio-pso:broker:v1:result"

	nsDSig = "http://www.w3.org/2000/09/xmldsig#"
	nsWSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
)

// xmlsec1Path fails in CI (CI=true) when xmlsec1 is missing, and skips elsewhere.
func xmlsec1Path(t *testing.T) string {
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

func xmlsec(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(xmlsec1Path(t), args...).CombinedOutput()
	return string(out), err
}

// signatureTemplate is an empty ds:Signature for xmlsec1 to fill, referencing #id.
func signatureTemplate(id, sigAlg string, enveloped bool) *etree.Element {
	sig := etree.NewElement("ds:Signature")
	sig.CreateAttr("xmlns:ds", nsDSig)
	si := sig.CreateElement("ds:SignedInfo")
	si.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#")
	si.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", sigAlg)
	ref := si.CreateElement("ds:Reference")
	ref.CreateAttr("URI", "#"+id)
	ts := ref.CreateElement("ds:Transforms")
	if enveloped {
		ts.CreateElement("ds:Transform").CreateAttr("Algorithm", "http://www.w3.org/2000/09/xmldsig#enveloped-signature")
	}
	ts.CreateElement("ds:Transform").CreateAttr("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#")
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", "http://www.w3.org/2001/04/xmlenc#sha256")
	ref.CreateElement("ds:DigestValue")
	sig.CreateElement("ds:SignatureValue")
	sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	return sig
}

// xmlsecTemplate builds a fresh request of user u, under u's first criminal case, with an empty
// signature in placement p.
func xmlsecTemplate(t *testing.T, e *e2eBroker, u devpki.User, p signing.Placement) []byte {
	t.Helper()
	doc := soap.NewRequest(newInfo(), e.queryFor(userCase(t, u, siobroker.BasisCriminal), 1, 11))
	sigAlg := signing.AlgRSASHA256
	if u.KeyType == devpki.KeyECDSA {
		sigAlg = signing.AlgECDSASHA256
	}
	switch p {
	case signing.PlacementWSSE:
		body := doc.FindElement("/soapenv:Envelope/soapenv:Body")
		header := doc.FindElement("/soapenv:Envelope/soapenv:Header")
		if body == nil || header == nil || body.SelectAttrValue("wsu:Id", "") == "" {
			t.Fatal("NewRequest gave no Header, or a Body without wsu:Id")
		}
		id := body.SelectAttrValue("wsu:Id", "")
		sec := header.CreateElement("wsse:Security")
		sec.CreateAttr("xmlns:wsse", nsWSSE)
		sec.CreateAttr("soapenv:mustUnderstand", "1")
		sec.AddChild(signatureTemplate(id, sigAlg, false))
	case signing.PlacementEnveloped:
		q := doc.FindElement("//q:query")
		if q == nil || q.SelectAttrValue("Id", "") == "" {
			t.Fatal("NewRequest gave no q:query with an Id")
		}
		id := q.SelectAttrValue("Id", "")
		q.InsertChildAt(0, signatureTemplate(id, sigAlg, true))
	}
	raw, err := soap.Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestXmlsecInterop(t *testing.T) {
	e := sharedBroker(t)
	ca := filepath.Join(e.pki, devpki.CAFile)
	for _, keyType := range []string{devpki.KeyRSA, devpki.KeyECDSA} {
		for _, tc := range []struct {
			placement signing.Placement
			signID    string // --id-attr for signing the request
			verifyID  string // --id-attr for verifying the reply
		}{
			{signing.PlacementWSSE, xmlsecBodyID, xmlsecBodyID},
			{signing.PlacementEnveloped, xmlsecQueryID, xmlsecResultID},
		} {
			t.Run(keyType+"/"+string(tc.placement), func(t *testing.T) {
				xmlsec1Path(t)
				t.Parallel()
				u := e.user(t, keyType, devpki.StatusValid)
				dir := t.TempDir()
				tmpl, signed, replyFile := filepath.Join(dir, "template.xml"), filepath.Join(dir, "signed.xml"), filepath.Join(dir, "reply.xml")
				if err := os.WriteFile(tmpl, xmlsecTemplate(t, e, u, tc.placement), 0o600); err != nil {
					t.Fatal(err)
				}

				// (a) xmlsec1 signs, the broker accepts.
				if out, err := xmlsec(t, "--sign", "--privkey-pem", filepath.Join(e.pki, u.Key)+","+filepath.Join(e.pki, u.Cert),
					"--id-attr:Id", tc.signID, "--output", signed, tmpl); err != nil {
					t.Fatalf("xmlsec1 --sign: %v\n%s", err, out)
				}
				req, err := os.ReadFile(signed)
				if err != nil {
					t.Fatal(err)
				}
				status, reply := post(t, e.url, req)
				if status != http.StatusOK {
					f, _ := soap.ParseFault(reply)
					t.Fatalf("broker refused xmlsec1's request: HTTP %d, fault %+v\n%s", status, f, req)
				}
				placement, info, res := verifiedReply(t, reply, ca)
				if placement != tc.placement {
					t.Errorf("reply placement %s, want %s", placement, tc.placement)
				}
				if id := messageID(t, req); info.CorrelationID != id || res.RequestMessageID != id {
					t.Errorf("reply answers %q, want %q", res.RequestMessageID, id)
				}
				if res.SignerIIN != u.IIN {
					t.Errorf("signerIin %q, want %q", res.SignerIIN, u.IIN)
				}
				for _, r := range res.Services {
					if r.Status != siobroker.StatusOK {
						t.Errorf("service %d: %s %s", r.Service, r.Status, r.Reason)
					}
				}

				// (b) the broker's reply verifies with xmlsec1; a tampered copy does not.
				if err := os.WriteFile(replyFile, reply, 0o600); err != nil {
					t.Fatal(err)
				}
				if out, err := xmlsec(t, "--verify", "--trusted-pem", ca, "--id-attr:Id", tc.verifyID, replyFile); err != nil {
					t.Fatalf("xmlsec1 refused the broker's reply: %v\n%s\n%s", err, out, reply)
				}
				tampered := strings.Replace(string(reply), "<q:signerIin>"+u.IIN, "<q:signerIin>"+e.subject, 1)
				if tampered == string(reply) {
					t.Fatal("reply has no q:signerIin to tamper with")
				}
				if err := os.WriteFile(replyFile, []byte(tampered), 0o600); err != nil {
					t.Fatal(err)
				}
				if out, err := xmlsec(t, "--verify", "--trusted-pem", ca, "--id-attr:Id", tc.verifyID, replyFile); err == nil {
					t.Fatalf("xmlsec1 accepted a tampered reply:\n%s", out)
				}

				// And the broker refuses xmlsec1's request once it has answered it.
				status, again := post(t, e.url, req)
				wantFault(t, status, again, http.StatusInternalServerError, siobroker.CodeReplayID)
			})
		}
	}
}

// TestXmlsecVerifiesSendReply: the reply saved by `siobroker send --save-reply` verifies with
// xmlsec1 in both placements.
func TestXmlsecVerifiesSendReply(t *testing.T) {
	e := sharedBroker(t)
	ca := filepath.Join(e.pki, devpki.CAFile)
	u := e.user(t, devpki.KeyECDSA, devpki.StatusValid)
	for _, tc := range []struct {
		placement signing.Placement
		id        string
	}{
		{signing.PlacementWSSE, xmlsecBodyID},
		{signing.PlacementEnveloped, xmlsecResultID},
	} {
		t.Run(string(tc.placement), func(t *testing.T) {
			xmlsec1Path(t)
			t.Parallel()
			dir := t.TempDir()
			reqFile, replyFile := filepath.Join(dir, "request.xml"), filepath.Join(dir, "reply.xml")
			code, stdout, stderr := runSend(t, e.sendArgs(u, "--placement", string(tc.placement),
				"--services", "1,5,11", "--save-request", reqFile, "--save-reply", replyFile)...)
			if code != sendExitOK {
				t.Fatalf("send exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if out, err := xmlsec(t, "--verify", "--trusted-pem", ca, "--id-attr:Id", tc.id, replyFile); err != nil {
				t.Fatalf("xmlsec1 refused the reply: %v\n%s", err, out)
			}
			// The request the client signed verifies with xmlsec1 too.
			reqID := xmlsecBodyID
			if tc.placement == signing.PlacementEnveloped {
				reqID = xmlsecQueryID
			}
			if out, err := xmlsec(t, "--verify", "--trusted-pem", ca, "--id-attr:Id", reqID, reqFile); err != nil {
				t.Fatalf("xmlsec1 refused the client's request: %v\n%s", err, out)
			}
		})
	}
}
