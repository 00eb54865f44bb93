package soap

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
)

var (
	repFrom = time.Date(2026, 10, 1, 0, 0, 0, 0, siobroker.Astana)
	repTo   = time.Date(2026, 11, 1, 0, 0, 0, 0, siobroker.Astana)
)

func repInfo() siobroker.RequestInfo {
	return siobroker.RequestInfo{MessageID: "rep-1", ServiceID: "SIO_PSO_REPORTS", SenderID: "S",
		MessageDate: time.Date(2026, 11, 23, 17, 0, 0, 0, siobroker.Astana)}
}

func fullReportQuery() ReportQuery {
	return ReportQuery{Kind: ReportRequests, Organisation: "ДП г. Астаны", ERDRCode: "1501", Department: "Следственное управление",
		UserIIN: "870315123455", From: repFrom, To: repTo, Basis: siobroker.BasisSearch, Service: 93, Outcome: "refused", Format: ReportJSON}
}

func fullExportQuery() ExportQuery {
	return ExportQuery{ResolutionNo: "2-15-26/77", ResolutionDate: time.Date(2026, 11, 20, 0, 0, 0, 0, siobroker.Astana),
		IssuedBy: "прокурор г. Астаны Ахметов А.А.", Document: Document{FileName: "постановление.pdf", MediaType: "application/pdf",
			Content: []byte("%PDF-1.7 resolution")},
		UserIIN: "870315123455", From: repFrom, To: repTo, Format: ReportCSV}
}

// roundTrip serialises doc, reads it back as a client would post it, and returns the data element.
func repDataElement(t *testing.T, doc *etree.Document) *etree.Element {
	t.Helper()
	raw, err := Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := ReadEnvelope(bytes.NewReader(raw), "text/xml; charset=utf-8", Limits{})
	if err != nil {
		t.Fatalf("ReadEnvelope: %v", err)
	}
	ri, data, err := SendMessageParts(Body(back))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRequestInfo(ri); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestReportQueryRoundTrip(t *testing.T) {
	for name, q := range map[string]ReportQuery{
		"full":    fullReportQuery(),
		"minimal": {From: repFrom, To: repTo, Format: ReportCSV},
		"summary": {Kind: ReportSummary, From: repFrom, To: repTo, Format: ReportXLSX},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseReportQuery(repDataElement(t, NewReportRequest(repInfo(), q)))
			if err != nil {
				t.Fatal(err)
			}
			if !got.From.Equal(q.From) || !got.To.Equal(q.To) {
				t.Errorf("period %s–%s, want %s–%s", got.From, got.To, q.From, q.To)
			}
			got.From, got.To, q.From, q.To = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if got != q {
				t.Errorf("got %+v, want %+v", got, q)
			}
		})
	}
}

// TestExportFetchAndStatusRoundTrip: q:exportFetch and q:exportStatus read back as written.
func TestExportFetchAndStatusRoundTrip(t *testing.T) {
	got, err := ParseExportFetch(repDataElement(t, NewExportFetchRequest(repInfo(), ExportFetch{ExportID: "e-1"})))
	if err != nil || got.ExportID != "e-1" {
		t.Fatalf("ParseExportFetch = %+v, %v", got, err)
	}
	want := ExportStatus{RequestMessageID: "c", ExportID: "e-1", Status: ExportRefused, Reason: "постановление не подписано"}
	doc := NewExportStatusResponse(ResponseInfo{MessageID: "r", CorrelationID: "c", ResponseDate: repTo, StatusCode: "SCSS001", StatusMessage: "ok"}, want)
	el := doc.FindElement("//exportStatus")
	st, err := ParseExportStatus(el)
	if err != nil || st != want {
		t.Fatalf("ParseExportStatus = %+v, %v; want %+v", st, err, want)
	}
	el.SelectAttr("status").Value = "done"
	if _, err := ParseExportStatus(el); err == nil {
		t.Error("a status outside the set was accepted")
	}
}

func TestExportQueryRoundTrip(t *testing.T) {
	byOrg := fullExportQuery()
	byOrg.UserIIN, byOrg.Organisation = "", "ДВД г. Алматы"
	for name, q := range map[string]ExportQuery{"user": fullExportQuery(), "organisation": byOrg} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseExportQuery(repDataElement(t, NewExportRequest(repInfo(), q)))
			if err != nil {
				t.Fatal(err)
			}
			if got.ResolutionNo != q.ResolutionNo || !got.ResolutionDate.Equal(q.ResolutionDate) || got.IssuedBy != q.IssuedBy ||
				got.Document.FileName != q.Document.FileName || got.Document.MediaType != q.Document.MediaType ||
				!bytes.Equal(got.Document.Content, q.Document.Content) ||
				got.UserIIN != q.UserIIN || got.Organisation != q.Organisation ||
				!got.From.Equal(q.From) || !got.To.Equal(q.To) || got.Format != q.Format {
				t.Errorf("got %+v, want %+v", got, q)
			}
		})
	}
}

// repEdit serialises doc, applies a textual edit and returns the data element of the result.
func repEdit(t *testing.T, doc *etree.Document, old, new string) (*etree.Element, string) {
	t.Helper()
	raw, err := Serialize(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.Contains(s, old) {
		t.Fatalf("edit %q: not found in %s", old, s)
	}
	s = strings.Replace(s, old, new, 1)
	back, _, err := ReadEnvelope(strings.NewReader(s), "text/xml", Limits{})
	if err != nil {
		t.Fatalf("ReadEnvelope: %v", err)
	}
	_, data, err := SendMessageParts(Body(back))
	if err != nil {
		t.Fatal(err)
	}
	return data, s
}

// reportRefusals are edits of the full report request that ParseReportQuery refuses, with the
// field path it must name. xsd says whether the XSD refuses it too (the rest are rules beyond it).
var reportRefusals = []struct {
	name, old, new, field string
	xsd                   bool
}{
	{"no from", `<q:from>2026-10-01T00:00:00.000+05:00</q:from>`, ``, "reportQuery/from", true},
	{"from without offset", `<q:from>2026-10-01T00:00:00.000+05:00</q:from>`, `<q:from>2026-10-01T00:00:00</q:from>`, "reportQuery/from", true},
	{"to before from", `<q:to>2026-11-01T00:00:00.000+05:00</q:to>`, `<q:to>2026-09-01T00:00:00.000+05:00</q:to>`, "reportQuery/to", false},
	{"service 94", `<q:service>93</q:service>`, `<q:service>94</q:service>`, "reportQuery/service", true},
	{"format xml", `<q:format>json</q:format>`, `<q:format>xml</q:format>`, "reportQuery/format", true},
	{"no format", `<q:format>json</q:format>`, ``, "reportQuery/format", true},
	{"iin 11 digits", `<q:userIin>870315123455</q:userIin>`, `<q:userIin>87031512345</q:userIin>`, "reportQuery/userIin", true},
	{"wrong order", `<q:organisation>ДП г. Астаны</q:organisation><q:erdrCode>1501</q:erdrCode>`,
		`<q:erdrCode>1501</q:erdrCode><q:organisation>ДП г. Астаны</q:organisation>`, "reportQuery/from", true},
	{"kind", `<q:kind>requests</q:kind>`, `<q:kind>monthly</q:kind>`, "reportQuery/kind", true},
	{"basis 10", `<q:basis>6</q:basis>`, `<q:basis>10</q:basis>`, "reportQuery/basis", true},
	{"outcome", `<q:outcome>refused</q:outcome>`, `<q:outcome>lost</q:outcome>`, "reportQuery/outcome", true},
	{"empty erdr code", `<q:erdrCode>1501</q:erdrCode>`, `<q:erdrCode></q:erdrCode>`, "reportQuery/erdrCode", true},
	{"empty department", `<q:department>Следственное управление</q:department>`, `<q:department></q:department>`, "reportQuery/department", true},
	{"unknown element", `</q:format>`, `</q:format><q:extra/>`, "reportQuery/extra", true},
	{"unknown attribute", `<q:reportQuery `, `<q:reportQuery x="1" `, "reportQuery/@x", true},
}

var exportRefusals = []struct {
	name, old, new, field string
	xsd                   bool
}{
	{"no resolution", `<q:resolutionNo>2-15-26/77</q:resolutionNo>`, ``, "exportQuery/resolutionNo", true},
	{"bad date", `<q:resolutionDate>2026-11-20</q:resolutionDate>`, `<q:resolutionDate>20.11.2026</q:resolutionDate>`, "exportQuery/resolutionDate", true},
	{"neither user nor organisation", `<q:userIin>870315123455</q:userIin>`, ``, "exportQuery/userIin", true},
	{"both user and organisation", `<q:userIin>870315123455</q:userIin>`, `<q:userIin>870315123455</q:userIin><q:organisation>X</q:organisation>`, "exportQuery/organisation", true},
	{"to equals from", `<q:to>2026-11-01T00:00:00.000+05:00</q:to>`, `<q:to>2026-10-01T00:00:00.000+05:00</q:to>`, "exportQuery/to", false},
	{"format", `<q:format>csv</q:format>`, `<q:format>pdf</q:format>`, "exportQuery/format", true},
	{"format xlsx: a report's only", `<q:format>csv</q:format>`, `<q:format>xlsx</q:format>`, "exportQuery/format", true},
	{"no issuer", `<q:issuedBy>прокурор г. Астаны Ахметов А.А.</q:issuedBy>`, ``, "exportQuery/issuedBy", true},
	{"no document", `<q:resolutionDocument fileName="постановление.pdf" mediaType="application/pdf">JVBERi0xLjcgcmVzb2x1dGlvbg==</q:resolutionDocument>`, ``,
		"exportQuery/resolutionDocument", true},
	{"empty document", `>JVBERi0xLjcgcmVzb2x1dGlvbg==<`, `><`, "exportQuery/resolutionDocument", true},
	{"not base64", `>JVBERi0xLjcgcmVzb2x1dGlvbg==<`, `>JVBER!0xLjcg<`, "exportQuery/resolutionDocument", true},
	{"document without a file name", ` fileName="постановление.pdf"`, ``, "exportQuery/resolutionDocument/@fileName", true},
}

func TestReportQueryRefusals(t *testing.T) {
	for _, c := range reportRefusals {
		t.Run(c.name, func(t *testing.T) {
			data, _ := repEdit(t, NewReportRequest(repInfo(), fullReportQuery()), c.old, c.new)
			_, err := ParseReportQuery(data)
			wantField(t, err, c.field)
		})
	}
	for _, c := range exportRefusals {
		t.Run("export/"+c.name, func(t *testing.T) {
			data, _ := repEdit(t, NewExportRequest(repInfo(), fullExportQuery()), c.old, c.new)
			_, err := ParseExportQuery(data)
			wantField(t, err, c.field)
		})
	}
	t.Run("a query is not a report query", func(t *testing.T) {
		data := repDataElement(t, NewRequest(fullInfo(), fullQuery()))
		_, err := ParseReportQuery(data)
		wantField(t, err, "reportQuery")
		_, err = ParseExportQuery(data)
		wantField(t, err, "exportQuery")
	})
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	e, ok := err.(*siobroker.Error)
	if !ok {
		t.Fatalf("err = %v, want a *siobroker.Error", err)
	}
	if e.Code != siobroker.CodeSchema || e.Field != field {
		t.Errorf("got %s at %q (%s), want %s at %q", e.Code, e.Field, e.Message, siobroker.CodeSchema, field)
	}
}

func TestReportResponseRoundTrip(t *testing.T) {
	info := ResponseInfo{MessageID: "reply-1", CorrelationID: "rep-1", ResponseDate: repTo,
		StatusCode: "SCSS001", StatusMessage: "report of 2 records"}
	body := []byte("seq,time\r\n1,\"a <b> & \"\"c\"\"\"\n2,\u0415\n")
	raw, err := Serialize(NewReportResponse(info, ReportCSV, 2, body))
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := ReadResponseEnvelope(bytes.NewReader(raw), "text/xml", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	gotInfo, rep, err := ParseReportResponse(Body(doc))
	if err != nil {
		t.Fatal(err)
	}
	if gotInfo.MessageID != "reply-1" || gotInfo.CorrelationID != "rep-1" || !gotInfo.ResponseDate.Equal(repTo) {
		t.Errorf("info %+v", gotInfo)
	}
	if rep.RequestMessageID != "rep-1" || rep.Format != ReportCSV || rep.Records != 2 || !bytes.Equal(rep.Body, body) {
		t.Errorf("report %+v, body %q", rep, rep.Body)
	}

	// An xlsx report travels as base64 and reads back as the workbook's bytes.
	workbook := []byte("PK\x03\x04\x00\xff not text")
	raw, err = Serialize(NewReportResponse(info, ReportXLSX, 7, workbook))
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err = ReadResponseEnvelope(bytes.NewReader(raw), "text/xml", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, rep, err := ParseReportResponse(Body(doc)); err != nil || rep.Format != ReportXLSX || rep.Records != 7 || !bytes.Equal(rep.Body, workbook) {
		t.Errorf("xlsx report %+v, %v", rep, err)
	}
	raw = []byte(strings.Replace(string(raw), "UEsDBA", "!!!!", 1))
	doc, _, _ = ReadResponseEnvelope(bytes.NewReader(raw), "text/xml", Limits{})
	if _, _, err := ParseReportResponse(Body(doc)); siobroker.ErrorCode(err) != siobroker.CodeSchema {
		t.Errorf("an xlsx report that is not base64: %v", err)
	}

	// A fault is returned as its error.
	fdoc := etree.NewDocument()
	if err := fdoc.ReadFromBytes(FaultXML(siobroker.Errorf("SIO-REPORTS-DENIED", "no"), repTo)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ParseReportResponse(Body(fdoc)); siobroker.ErrorCode(err) != "SIO-REPORTS-DENIED" {
		t.Errorf("fault: %v", err)
	}

	// Edits of q:report that ParseReport refuses.
	for name, edit := range map[string][2]string{
		"records negative":    {`records="2"`, `records="-1"`},
		"format":              {`format="csv"`, `format="xml"`},
		"child element":       {`seq,time`, `<q:x/>seq,time`},
		"no requestMessageId": {`requestMessageId="rep-1"`, ``},
	} {
		t.Run(name, func(t *testing.T) {
			s := strings.Replace(string(raw), edit[0], edit[1], 1)
			doc, _, err := ReadResponseEnvelope(strings.NewReader(s), "text/xml", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := ParseReportResponse(Body(doc)); siobroker.ErrorCode(err) != siobroker.CodeSchema {
				t.Errorf("accepted, or wrong code: %v", err)
			}
		})
	}
}

// TestReportXSDAgreement validates what NewReportRequest, NewExportRequest and NewReportResponse
// produce against the XSDs with xmllint, and checks that the edits the parsers refuse as schema
// violations are refused by the XSD too.
func TestReportXSDAgreement(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing (Debian package libxml2-utils)")
		}
		t.Skip("xmllint not installed (libxml2-utils)")
	}
	wrapper, err := filepath.Abs(filepath.Join(testdataDir, "soap11-envelope.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	validate := func(t *testing.T, doc string) string {
		t.Helper()
		f := filepath.Join(t.TempDir(), "msg.xml")
		if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", wrapper, f).CombinedOutput()
		if err != nil {
			return string(out)
		}
		return ""
	}
	ser := func(doc *etree.Document) string {
		b, err := Serialize(doc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	byOrg := fullExportQuery()
	byOrg.UserIIN, byOrg.Organisation = "", "ДВД"
	signed := strings.Replace(ser(NewReportResponse(ResponseInfo{MessageID: "r", CorrelationID: "c", ResponseDate: repTo,
		StatusCode: "SCSS001", StatusMessage: "ok"}, ReportJSON, 0, []byte("[]"))), `>[]`, `>`+minimalSignature+`[]`, 1)
	for name, doc := range map[string]string{
		"report request":         ser(NewReportRequest(repInfo(), fullReportQuery())),
		"minimal report request": ser(NewReportRequest(repInfo(), ReportQuery{From: repFrom, To: repTo, Format: ReportCSV})),
		"export by user":         ser(NewExportRequest(repInfo(), fullExportQuery())),
		"export by organisation": ser(NewExportRequest(repInfo(), byOrg)),
		"report response":        ser(NewReportResponse(ResponseInfo{MessageID: "r", CorrelationID: "c", ResponseDate: repTo, StatusCode: "SCSS001", StatusMessage: "ok"}, ReportCSV, 3, []byte("a,b\n1,2\n"))),
		"summary request, xlsx":  ser(NewReportRequest(repInfo(), ReportQuery{Kind: ReportSummary, From: repFrom, To: repTo, Format: ReportXLSX})),
		"xlsx report response":   ser(NewReportResponse(ResponseInfo{MessageID: "r", CorrelationID: "c", ResponseDate: repTo, StatusCode: "SCSS001", StatusMessage: "ok"}, ReportXLSX, 1, []byte("PK\x03\x04 a workbook\x00\xff"))),
		"signed report response": signed,
		"export fetch":           ser(NewExportFetchRequest(repInfo(), ExportFetch{ExportID: "0b7c7f0e-4b1e-4f3e-9d55-0f6b8d2d1a01"})),
		"export pending":         ser(NewExportStatusResponse(ResponseInfo{MessageID: "r", CorrelationID: "c", ResponseDate: repTo, StatusCode: "SCSS001", StatusMessage: "ok"}, ExportStatus{ExportID: "e-1", Status: ExportPending})),
		"export refused":         ser(NewExportStatusResponse(ResponseInfo{MessageID: "r", CorrelationID: "c", ResponseDate: repTo, StatusCode: "SCSS001", StatusMessage: "ok"}, ExportStatus{ExportID: "e-1", Status: ExportRefused, Reason: "постановление не подписано"})),
	} {
		t.Run(name, func(t *testing.T) {
			if out := validate(t, doc); out != "" {
				t.Errorf("xmllint refused:\n%s\n%s", out, doc)
			}
		})
	}
	for _, c := range reportRefusals {
		if !c.xsd {
			continue
		}
		t.Run("refused/"+c.name, func(t *testing.T) {
			_, doc := repEdit(t, NewReportRequest(repInfo(), fullReportQuery()), c.old, c.new)
			if out := validate(t, doc); out == "" {
				t.Error("xmllint accepted it")
			}
		})
	}
	for _, c := range exportRefusals {
		if !c.xsd {
			continue
		}
		t.Run("refused/export/"+c.name, func(t *testing.T) {
			_, doc := repEdit(t, NewExportRequest(repInfo(), fullExportQuery()), c.old, c.new)
			if out := validate(t, doc); out == "" {
				t.Error("xmllint accepted it")
			}
		})
	}
}
