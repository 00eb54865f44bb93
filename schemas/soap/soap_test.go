package soap

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

var update = flag.Bool("update", false, "rewrite the generated golden files in testdata/soap")

const testdataDir = "../../testdata/soap"

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The values the golden request.xml and reply.xml carry.
var (
	goldenInfo = siobroker.RequestInfo{
		MessageID:   "7c9e6679-7425-40de-944b-e07fc1f90ae7",
		ServiceID:   "SIO_PSO_QUERY",
		MessageDate: time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana),
		SenderID:    "MVD_IS_ERDR",
		Properties:  []siobroker.Property{{Key: "department", Value: "ДП г. Астаны"}},
	}
	goldenQuery = siobroker.Query{
		Basis:    siobroker.BasisCriminal,
		Case:     siobroker.CaseRef{Number: "267100031000123"},
		Article:  "190-2",
		Subject:  siobroker.Subject{IIN: "870315123455"},
		Services: []int{1, 12, 45},
		Purpose:  "Установление имущества подозреваемого по уголовному делу",
	}
	goldenRespInfo = ResponseInfo{
		MessageID:     "0b3f2a8e-5d41-4c7a-9f16-2e8d7c5b4a39",
		CorrelationID: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
		ResponseDate:  time.Date(2026, 11, 23, 17, 0, 2, 345e6, siobroker.Astana),
		StatusCode:    "SCSS001",
		StatusMessage: "Message has been processed successfully",
	}
	goldenResult = Result{
		RequestMessageID: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
		SignerIIN:        "900101401238",
		Basis:            siobroker.BasisCriminal,
		Subject:          siobroker.Subject{IIN: "870315123455"},
		Services: []siobroker.ServiceResult{
			{Service: 1, Status: siobroker.StatusOK, Reason: siobroker.ReasonOK, Records: []siobroker.Record{{
				Type: "person",
				Fields: []siobroker.Field{
					{Name: "lastName", Value: "Иванов"},
					{Name: "firstName", Value: "Иван"},
					{Name: "birthDate", Value: "1987-03-15"},
				},
			}}},
			{Service: 12, Status: siobroker.StatusOK, Reason: siobroker.ReasonNoData},
			{Service: 45, Status: siobroker.StatusTimeout, Reason: siobroker.ReasonTimeout, Message: "no answer within 10s"},
		},
	}
)

// parseRequest runs the broker's read path without a signature: envelope, parts, requestInfo, query.
func parseRequest(b []byte) (siobroker.RequestInfo, siobroker.Query, error) {
	doc, _, err := ReadEnvelope(bytes.NewReader(b), "text/xml; charset=utf-8", Limits{})
	if err != nil {
		return siobroker.RequestInfo{}, siobroker.Query{}, err
	}
	ri, data, err := SendMessageParts(Body(doc))
	if err != nil {
		return siobroker.RequestInfo{}, siobroker.Query{}, err
	}
	info, err := ParseRequestInfo(ri)
	if err != nil {
		return info, siobroker.Query{}, err
	}
	q, err := ParseQuery(data)
	return info, q, err
}

// parseReply runs the client's read path without a signature.
func parseReply(t testing.TB, b []byte) (ResponseInfo, Result, error) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	return ParseResponse(Body(doc))
}

func sameInfo(a, b siobroker.RequestInfo) bool {
	if !a.MessageDate.Equal(b.MessageDate) {
		return false
	}
	a.MessageDate, b.MessageDate = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func sameRespInfo(a, b ResponseInfo) bool {
	if !a.ResponseDate.Equal(b.ResponseDate) {
		return false
	}
	a.ResponseDate, b.ResponseDate = time.Time{}, time.Time{}
	return a == b
}

func TestGoldenRequest(t *testing.T) {
	raw := readGolden(t, "request.xml")
	doc, got, err := ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=UTF-8", Limits{})
	if err != nil {
		t.Fatalf("ReadEnvelope: %v", err)
	}
	if !bytes.Equal(got, raw) {
		t.Error("ReadEnvelope did not return the exact bytes read")
	}
	ri, data, err := SendMessageParts(Body(doc))
	if err != nil {
		t.Fatalf("SendMessageParts: %v", err)
	}
	info, err := ParseRequestInfo(ri)
	if err != nil {
		t.Fatalf("ParseRequestInfo: %v", err)
	}
	if !sameInfo(info, goldenInfo) {
		t.Errorf("requestInfo:\n got %+v\nwant %+v", info, goldenInfo)
	}
	q, err := ParseQuery(data)
	if err != nil {
		t.Fatalf("ParseQuery: %v", err)
	}
	if !reflect.DeepEqual(q, goldenQuery) {
		t.Errorf("query:\n got %+v\nwant %+v", q, goldenQuery)
	}
}

func TestGoldenReply(t *testing.T) {
	info, res, err := parseReply(t, readGolden(t, "reply.xml"))
	if err != nil {
		t.Fatalf("ParseResponse: %v", err)
	}
	if !sameRespInfo(info, goldenRespInfo) {
		t.Errorf("responseInfo:\n got %+v\nwant %+v", info, goldenRespInfo)
	}
	if !reflect.DeepEqual(res, goldenResult) {
		t.Errorf("result:\n got %+v\nwant %+v", res, goldenResult)
	}
}

// TestGenerated pins the exact bytes NewRequest and NewResponse produce for the golden values, so
// that a change in the wire form (which would break stored signatures and peers) shows up as a
// diff. Run with -update to accept a deliberate change.
func TestGenerated(t *testing.T) {
	cases := []struct {
		file string
		doc  *etree.Document
	}{
		{"request.generated.xml", NewRequest(goldenInfo, goldenQuery)},
		{"reply.generated.xml", NewResponse(goldenRespInfo, goldenResult)},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := Serialize(c.doc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(testdataDir, c.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readGolden(t, c.file)
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the generated bytes (rerun with -update if intended):\n got %s\nwant %s", c.file, got, want)
			}
		})
	}
}

func TestRequestRoundTrip(t *testing.T) {
	full := goldenInfo
	full.CorrelationID = "corr-1"
	full.RouteID = "route-1"
	full.SessionID = "sess-1"
	full.MessageDate = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	full.Properties = append(full.Properties, siobroker.Property{Key: "k2", Value: "a & b < c\r\nd"})
	cases := []struct {
		name string
		info siobroker.RequestInfo
		q    siobroker.Query
	}{
		{"golden", goldenInfo, goldenQuery},
		{"all optional fields", full, siobroker.Query{
			Basis: siobroker.BasisCourtCivil,
			Case: siobroker.CaseRef{Number: "7594-26-00-2/123", InstructionNo: "12-3/45", RequestingBody: "Генпрокуратура <РФ>",
				CoveringLetterNo: "1/2", Year: "2026", Court: "Есильский районный суд г. Астаны"},
			Subject:  siobroker.Subject{BIN: "951123300019"},
			Services: []int{93, 1, 50},
			Purpose:  strings.Repeat("я", 1000),
		}},
		{"all 93 services", goldenInfo, func() siobroker.Query {
			q := goldenQuery
			q.Article = ""
			q.Services = nil
			for i := siobroker.FirstService; i <= siobroker.LastService; i++ {
				q.Services = append(q.Services, i)
			}
			return q
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Serialize(NewRequest(c.info, c.q))
			if err != nil {
				t.Fatal(err)
			}
			info, q, err := parseRequest(b)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, b)
			}
			if !sameInfo(info, c.info) {
				t.Errorf("requestInfo:\n got %+v\nwant %+v", info, c.info)
			}
			if !reflect.DeepEqual(q, c.q) {
				t.Errorf("query:\n got %+v\nwant %+v", q, c.q)
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	minimal := Result{
		RequestMessageID: "m", SignerIIN: "900101401238", Basis: siobroker.BasisSearch,
		Subject:  siobroker.Subject{BIN: "951123300019"},
		Services: []siobroker.ServiceResult{{Service: 7, Status: siobroker.StatusDenied, Reason: siobroker.ReasonDeniedBasis}},
	}
	info := goldenRespInfo
	info.SessionID = "s"
	info.CorrelationID = ""
	for name, c := range map[string]struct {
		info ResponseInfo
		r    Result
	}{"golden": {goldenRespInfo, goldenResult}, "minimal": {info, minimal}} {
		t.Run(name, func(t *testing.T) {
			b, err := Serialize(NewResponse(c.info, c.r))
			if err != nil {
				t.Fatal(err)
			}
			gotInfo, gotRes, err := parseReply(t, b)
			if err != nil {
				t.Fatalf("ParseResponse: %v\n%s", err, b)
			}
			if !sameRespInfo(gotInfo, c.info) {
				t.Errorf("responseInfo:\n got %+v\nwant %+v", gotInfo, c.info)
			}
			if !reflect.DeepEqual(gotRes, c.r) {
				t.Errorf("result:\n got %+v\nwant %+v", gotRes, c.r)
			}
		})
	}
}

func TestSerialize(t *testing.T) {
	b, err := Serialize(NewRequest(goldenInfo, goldenQuery))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope`)) {
		t.Errorf("no declaration or not at the start: %.80s", b)
	}
	if bytes.Contains(b, []byte("\n")) {
		t.Error("indented output: a signature must be computed over unindented content")
	}
	// A document read with its own declaration keeps exactly one declaration.
	doc, _, err := ReadEnvelope(bytes.NewReader(b), "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, b) {
		t.Errorf("re-serialising changed the bytes:\n got %s\nwant %s", again, b)
	}
	if _, err := Serialize(etree.NewDocument()); err == nil {
		t.Error("an empty document serialised")
	}
}

// wantErr checks err's code, field and message.
func wantErr(t *testing.T, err error, code siobroker.Code, field, msg string) {
	t.Helper()
	var e *siobroker.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *siobroker.Error", err, err)
	}
	if e.Code != code {
		t.Errorf("code %s, want %s (%v)", e.Code, code, err)
	}
	if field != "" && e.Field != field {
		t.Errorf("field %q, want %q (%v)", e.Field, field, err)
	}
	if msg != "" && !strings.Contains(e.Message, msg) {
		t.Errorf("message %q does not contain %q", e.Message, msg)
	}
}
