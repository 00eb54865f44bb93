package soap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
)

// TestXSDAgreement validates the golden envelopes, and what NewRequest, NewResponse and FaultXML
// produce, against the published XSDs with xmllint: the hand-written checks in this package and
// the XSDs a peer generates code from must describe the same messages. The envelope schema is a
// local reduction (testdata/soap/soap11-envelope.xsd) because the test runs offline; it validates
// the Body's child laxly, and the types XSD's data element laxly too, so q:query and q:result are
// checked against sio-query-v1.xsd.
func TestXSDAgreement(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing (Debian package libxml2-utils); CI must run the XSD agreement test")
		}
		t.Skip("xmllint not installed (libxml2-utils); skipping the XSD agreement test")
	}
	wrapper, err := filepath.Abs(filepath.Join(testdataDir, "soap11-envelope.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	validate := func(t *testing.T, doc []byte) string {
		t.Helper()
		f := filepath.Join(t.TempDir(), "msg.xml")
		if err := os.WriteFile(f, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		// --nonet: a remote schemaLocation must fail rather than be fetched.
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", wrapper, f).CombinedOutput()
		if err != nil {
			return string(out)
		}
		return ""
	}
	ser := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	valid := map[string][]byte{
		"golden request":         readGolden(t, "request.xml"),
		"golden reply":           readGolden(t, "reply.xml"),
		"generated request":      readGolden(t, "request.generated.xml"),
		"generated reply":        readGolden(t, "reply.generated.xml"),
		"NewRequest all fields":  ser(Serialize(NewRequest(fullInfo(), fullQuery()))),
		"NewResponse":            ser(Serialize(NewResponse(goldenRespInfo, goldenResult))),
		"fault with field":       FaultXML(siobroker.FieldError("query/basis", "bad"), time.Now()),
		"fault internal":         FaultXML(os.ErrClosed, time.Now()),
		"request with signature": []byte(strings.Replace(string(readGolden(t, "request.xml")), "<q:basis>", minimalSignature+`<q:basis>`, 1)),
		// The gateway's AsyncChannel v10, both directions.
		"AC sendMessage":      ser(Serialize(NewACSendMessage("m-1", ACMessageInfo{ServiceID: "SIO_PSO_QUERY", MessageType: ACRequest, MessageDate: acAt, SenderID: "s", Properties: fullInfo().Properties}, fullQuery()))),
		"AC sendMessage ack":  ser(Serialize(NewACSendMessageResponse("m-1", "m-1", acAt, "{a7f4b65f-d9c8-4303-9ad7-bfd3b91e0d33}"))),
		"AC getMessageStatus": ser(Serialize(NewACGetMessageStatus("m-2", "m-1", "s", acAt))),
		"AC status answer": ser(Serialize(NewACGetMessageStatusResponse("m-2", ACStatus{State: siobroker.AsyncStopped,
			StatusCode: "DELIVERY_STOPPED", StatusMessage: "stopped", StatusDate: acAt}, acAt))),
		"AC getMessages": ser(Serialize(NewACGetMessages("m-3", "SIO_PSO_QUERY", "", "m-1", "s", 10, acAt))),
		"AC messages": ser(Serialize(NewACGetMessagesResponse("m-3", acAt, "{a7f4b65f-d9c8-4303-9ad7-bfd3b91e0d33}", []ACMessage{{
			Info: ACMessageInfo{MessageID: "r-1", CorrelationID: "m-1", ServiceID: "SIO_PSO_QUERY", MessageType: ACResponse, MessageDate: acAt, SenderID: "SIO_PSO"},
			Data: NewResponse(goldenRespInfo, goldenResult).FindElement("//data/*")}}))),
		"AC notification":        ser(Serialize(NewACSendDeliveryNotification("m-4", "r-1", "SIO_PSO_QUERY", "s", siobroker.AsyncReceipt{Accepted: true}, acAt))),
		"AC notification answer": ser(Serialize(NewACDeliveryNotificationResponse("n-1", acAt, "{a7f4b65f-d9c8-4303-9ad7-bfd3b91e0d33}"))),
		"AC fault":               FaultXMLFor(ACGetMessages, siobroker.Errorf(siobroker.CodeAsyncUnknown, "no"), acAt),
		// The broker's own operation GetMaintenanceWindows, both directions.
		"GetMaintenanceWindows": ser(Serialize(NewMaintenanceQueryRequest(fullInfo()))),
		"GetMaintenanceWindowsResponse": ser(Serialize(NewMaintenanceWindowsResponse(goldenRespInfo, MaintenanceWindows{
			RequestMessageID: "m-1", AsOf: acAt, MinNotice: 24 * time.Hour, Windows: []WindowEntry{
				{Number: 12, Services: []int{11, 12}, Start: acAt.Add(48 * time.Hour), End: acAt.Add(50 * time.Hour), Reason: "КГД",
					AnnouncedAt: acAt, State: WindowAnnounced},
				{Start: acAt.Add(-time.Hour), End: acAt.Add(time.Hour), Reason: "отказ", AnnouncedAt: acAt, Emergency: true,
					Cancelled: acAt, State: WindowCancelled},
			}}))),
	}
	for name, doc := range valid {
		t.Run(name, func(t *testing.T) {
			if out := validate(t, doc); out != "" {
				t.Errorf("xmllint refused:\n%s", out)
			}
		})
	}

	// The other direction, spot-checked: edits ParseQuery refuses are refused by the XSD too, so
	// the test would notice a schema that had become too loose (or a lax wrapper that validates
	// nothing).
	golden := string(readGolden(t, "request.xml"))
	invalid := map[string][2]string{
		"basis 10":      {`<q:basis>1</q:basis>`, `<q:basis>10</q:basis>`},
		"service 94":    {`<q:service>45</q:service>`, `<q:service>94</q:service>`},
		"iin 11 digits": {`<q:iin>870315123455</q:iin>`, `<q:iin>87031512345</q:iin>`},
		"unknown":       {`</q:purpose>`, `</q:purpose><q:foo/>`},
		"no messageId":  {`<messageId>7c9e6679-7425-40de-944b-e07fc1f90ae7</messageId>`, ``},
		"missing basis": {`<q:basis>1</q:basis>`, ``},
		"duplicate":     {`<q:service>45</q:service>`, `<q:service>12</q:service>`},
		"wrong order":   {`<q:article>190-2</q:article>`, ``}, // replaced below
	}
	// article moved in front of case
	invalid["wrong order"] = [2]string{`<q:basis>1</q:basis>`, `<q:basis>1</q:basis><q:article>190-2</q:article>`}
	for name, edit := range invalid {
		t.Run("refused/"+name, func(t *testing.T) {
			b := strings.Replace(golden, edit[0], edit[1], 1)
			if _, _, err := parseRequest([]byte(b)); err == nil {
				t.Error("ParseQuery accepted it")
			}
			if out := validate(t, []byte(b)); out == "" {
				t.Error("xmllint accepted it")
			}
		})
	}
}

var acAt = time.Date(2026, 12, 6, 15, 0, 0, 0, siobroker.Astana)

func fullInfo() siobroker.RequestInfo {
	return siobroker.RequestInfo{
		MessageID: "m-1", CorrelationID: "c-1", ServiceID: "SIO_PSO_QUERY",
		MessageDate: time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana),
		RouteID:     "r", SenderID: "s", SessionID: "sess",
		Properties: []siobroker.Property{{Key: "a", Value: "1"}, {Key: "b", Value: ""}},
	}
}

func fullQuery() siobroker.Query {
	return siobroker.Query{
		Basis: siobroker.BasisCourtAdmin,
		Case: siobroker.CaseRef{Number: "N-1", InstructionNo: "I-1", RequestingBody: "body", CoveringLetterNo: "L-1",
			Year: "2026", Court: "court"},
		Article:  "1",
		Subject:  siobroker.Subject{BIN: "951123300019"},
		Services: []int{1, 93},
		Purpose:  "p",
	}
}

// minimalSignature is the smallest ds:Signature the W3C schema accepts: the XSDs bind the
// signature slot to ds:Signature itself, so a placeholder must be a real shape.
const minimalSignature = `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>` +
	`<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>` +
	`<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>` +
	`<ds:Reference URI="#id-q"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>` +
	`<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>`
