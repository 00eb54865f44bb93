package soap

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestJournaledQuery reads the query back from envelopes as the journal keeps them: the
// SyncChannel SendMessage and the gateway's AsyncChannel sendMessage; and refuses an envelope
// without a query, or with two.
func TestJournaledQuery(t *testing.T) {
	sync, err := Serialize(NewRequest(goldenInfo, goldenQuery))
	if err != nil {
		t.Fatal(err)
	}
	async, err := Serialize(NewACSendMessage("ac-1", ACMessageInfo{ServiceID: "SIO_PSO_QUERY", MessageDate: goldenInfo.MessageDate}, goldenQuery))
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string][]byte{"SyncChannel": sync, "AsyncChannel": async} {
		t.Run(name, func(t *testing.T) {
			q, err := JournaledQuery(raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q, goldenQuery) {
				t.Errorf("got %+v, want %+v", q, goldenQuery)
			}
		})
	}
	status, err := Serialize(NewAsyncQueryRequest(goldenInfo, "statusQuery", "m-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JournaledQuery(status, Limits{}); !errors.Is(err, ErrNoQuery) {
		t.Errorf("a status query: %v, want ErrNoQuery", err)
	}
	// A second q:query, as a signature-wrapping attempt would carry in a header.
	q := string(sync)
	i, j := strings.Index(q, "<q:query"), strings.Index(q, "</q:query>")+len("</q:query>")
	wrapped := strings.Replace(q, "<soapenv:Body", "<soapenv:Header>"+strings.Replace(q[i:j], "870315123455", "990101300123", 1)+"</soapenv:Header><soapenv:Body", 1)
	if _, err := JournaledQuery([]byte(wrapped), Limits{}); err == nil || !strings.Contains(err.Error(), "2 q:query") {
		t.Errorf("two queries: %v", err)
	}
	if _, err := JournaledQuery([]byte("<a><b></a>"), Limits{}); err == nil {
		t.Error("malformed XML read")
	}
	// Larger than the default limit: the broker took it under its own limits of the day.
	big := strings.Replace(q, "</soapenv:Envelope>", "<!--"+strings.Repeat("x", 2<<20)+"--></soapenv:Envelope>", 1)
	if _, err := JournaledQuery([]byte(big), Limits{}); err != nil {
		t.Errorf("a large envelope: %v", err)
	}
}
