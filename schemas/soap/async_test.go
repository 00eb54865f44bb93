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

func TestAsyncRoundTrip(t *testing.T) {
	for _, kind := range []string{AsyncStatusQuery, AsyncFetchQuery} {
		doc := NewAsyncQueryRequest(fullInfo(), kind, "broker-id-1")
		_, data, err := SendMessageParts(Body(doc))
		if err != nil {
			t.Fatal(err)
		}
		gotKind, id, err := ParseAsyncQuery(data)
		if err != nil || gotKind != kind || id != "broker-id-1" {
			t.Fatalf("ParseAsyncQuery = %q %q %v", gotKind, id, err)
		}
	}
	st := AsyncStatus{RequestMessageID: "m-1", MessageID: "b-1", CorrelationID: "c-1", State: siobroker.AsyncDelivered, Message: "done"}
	info := ResponseInfo{MessageID: "b-1", CorrelationID: "m-1", ResponseDate: time.Now(), StatusCode: "DELIVERED", StatusMessage: "done"}
	gotInfo, got, err := ParseAsyncStatusResponse(Body(NewAsyncStatusResponse(info, st)))
	if err != nil || got != st || gotInfo.StatusCode != "DELIVERED" {
		t.Fatalf("ParseAsyncStatusResponse = %+v %+v %v", gotInfo, got, err)
	}
	bad := NewAsyncStatusResponse(info, AsyncStatus{MessageID: "b-1", State: "LOST"})
	if _, _, err := ParseAsyncStatusResponse(Body(bad)); siobroker.ErrorCode(err) != siobroker.CodeSchema {
		t.Fatalf("state LOST: %v", err)
	}
	q := NewAsyncQueryRequest(fullInfo(), AsyncStatusQuery, "")
	_, data, _ := SendMessageParts(Body(q))
	if _, _, err := ParseAsyncQuery(data); siobroker.ErrorCode(err) != siobroker.CodeSchema {
		t.Fatalf("empty messageId: %v", err)
	}
}

// TestAsyncXSDAgreement validates what NewAsyncQueryRequest and NewAsyncStatusResponse produce
// against the published XSDs, as TestXSDAgreement does for the synchronous messages.
func TestAsyncXSDAgreement(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing (Debian package libxml2-utils)")
		}
		t.Skip("xmllint not installed")
	}
	wrapper, err := filepath.Abs(filepath.Join(testdataDir, "soap11-envelope.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	validate := func(doc []byte) string {
		f := filepath.Join(t.TempDir(), "msg.xml")
		if err := os.WriteFile(f, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", wrapper, f).CombinedOutput()
		if err != nil {
			return string(out)
		}
		return ""
	}
	st := AsyncStatus{RequestMessageID: "m-1", MessageID: "b-1", CorrelationID: "c-1", State: siobroker.AsyncOnDelivery, Message: "accepted"}
	info := ResponseInfo{MessageID: "b-1", CorrelationID: "m-1", ResponseDate: time.Now(), StatusCode: "ON_DELIVERY", StatusMessage: "accepted"}
	docs := map[string][]byte{}
	for _, kind := range []string{AsyncStatusQuery, AsyncFetchQuery} {
		b, err := Serialize(NewAsyncQueryRequest(fullInfo(), kind, "b-1"))
		if err != nil {
			t.Fatal(err)
		}
		docs[kind] = b
	}
	b, err := Serialize(NewAsyncStatusResponse(info, st))
	if err != nil {
		t.Fatal(err)
	}
	docs["asyncStatus"] = b
	for name, doc := range docs {
		if out := validate(doc); out != "" {
			t.Errorf("%s: xmllint refused:\n%s", name, out)
		}
	}
	if out := validate([]byte(strings.Replace(string(docs["asyncStatus"]), "ON_DELIVERY</q:state>", "LOST</q:state>", 1))); out == "" {
		t.Error("xmllint accepted state LOST")
	}
}
