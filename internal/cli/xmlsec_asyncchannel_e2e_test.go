package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
)

// TestXmlsecAsyncChannel: the gateway's AsyncChannel v10 with xmlsec1 as the client's signer. A
// sendMessage and a getMessages signed by xmlsec1 (certificate in X509Data) are answered, and
// every answer, the RESPONSE handed out included, verifies with xmlsec1.
func TestXmlsecAsyncChannel(t *testing.T) {
	xmlsec1Path(t)
	e := sharedBroker(t)
	ca := filepath.Join(e.pki, devpki.CAFile)
	u := e.user(t, devpki.KeyRSA, devpki.StatusValid)
	dir := t.TempDir()

	// call signs doc's Body with xmlsec1 in a wsse:Security header, posts it and returns the
	// verified answer's Body.
	call := func(doc *etree.Document) *etree.Element {
		t.Helper()
		body := doc.FindElement("/soapenv:Envelope/soapenv:Body")
		sec := doc.FindElement("/soapenv:Envelope/soapenv:Header").CreateElement("wsse:Security")
		sec.CreateAttr("xmlns:wsse", nsWSSE)
		sec.AddChild(signatureTemplate(body.SelectAttrValue("wsu:Id", ""), signing.AlgRSASHA256, false))
		raw, err := soap.Serialize(doc)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, signed, answer := filepath.Join(dir, "t.xml"), filepath.Join(dir, "s.xml"), filepath.Join(dir, "a.xml")
		if err := os.WriteFile(tmpl, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := xmlsec(t, "--sign", "--privkey-pem", filepath.Join(e.pki, u.Key)+","+filepath.Join(e.pki, u.Cert),
			"--id-attr:Id", xmlsecBodyID, "--output", signed, tmpl); err != nil {
			t.Fatalf("xmlsec1 --sign: %v\n%s", err, out)
		}
		req, err := os.ReadFile(signed)
		if err != nil {
			t.Fatal(err)
		}
		status, reply := post(t, e.base+app.AsyncPath, req)
		if f, isFault := soap.ParseFault(reply); isFault {
			t.Fatalf("HTTP %d, fault %s: %s", status, f.Code, f.Message)
		}
		if err := os.WriteFile(answer, reply, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := xmlsec(t, "--verify", "--trusted-pem", ca, "--id-attr:Id", xmlsecBodyID, answer); err != nil {
			t.Fatalf("xmlsec1 refused the broker's answer: %v\n%s\n%s", err, out, truncate(reply))
		}
		out := etree.NewDocument()
		if err := out.ReadFromBytes(reply); err != nil {
			t.Fatal(err)
		}
		return soap.Body(out)
	}

	now := siobroker.SystemClock{}.Now()
	mi := soap.ACMessageInfo{ServiceID: "SIO_PSO_QUERY", MessageType: soap.ACRequest, MessageDate: now, SenderID: "XMLSEC"}
	id, chain, err := soap.ParseACSendMessageResponse(call(soap.NewACSendMessage(uuid.NewString(), mi, e.queryFor(userCase(t, u, siobroker.BasisCriminal), 1, 5))))
	if err != nil || id == "" || chain != id {
		t.Fatalf("ack %q %q: %v", id, chain, err)
	}
	var msgs []soap.ACMessage
	deadline := time.Now().Add(30 * time.Second)
	for len(msgs) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no RESPONSE in chain %s", id)
		}
		time.Sleep(100 * time.Millisecond)
		at := siobroker.SystemClock{}.Now()
		if msgs, err = soap.ParseACGetMessagesResponse(call(soap.NewACGetMessages(uuid.NewString(), "SIO_PSO_QUERY", "", id, "XMLSEC", 0, at))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := soap.ParseResult(msgs[0].Data)
	if err != nil || msgs[0].Info.MessageType != soap.ACResponse || msgs[0].Info.CorrelationID != id || res.SignerIIN != u.IIN || len(res.Services) != 2 {
		t.Fatalf("RESPONSE %+v, result %+v, %v", msgs[0].Info, res, err)
	}
}
