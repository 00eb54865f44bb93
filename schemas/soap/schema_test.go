package soap

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sio-pso/siobroker"
)

// TestSchemaErrors edits the golden request one way at a time and checks that the refusal is a
// schema error naming the field.
func TestSchemaErrors(t *testing.T) {
	golden := string(readGolden(t, "request.xml"))
	const (
		basis   = `<q:basis>1</q:basis>`
		article = `<q:article>190-2</q:article>`
		subject = `<q:subject>
                <q:iin>870315123455</q:iin>
              </q:subject>`
		services = `<q:service>1</q:service>`
		purpose  = `<q:purpose>Установление имущества подозреваемого по уголовному делу</q:purpose>`
		caseEl   = `<q:case>
                <q:number>267100031000123</q:number>
              </q:case>`
	)
	cases := []struct {
		name, old, new string
		field, msg     string
	}{
		{"missing messageId", `<messageId>7c9e6679-7425-40de-944b-e07fc1f90ae7</messageId>`, ``, "requestInfo/messageId", "is required"},
		{"empty messageId", `<messageId>7c9e6679-7425-40de-944b-e07fc1f90ae7</messageId>`, `<messageId> </messageId>`, "requestInfo/messageId", "must not be empty"},
		{"messageDate without offset", `2026-11-23T17:00:00.000+05:00`, `2026-11-23T17:00:00`, "requestInfo/messageDate", "time zone offset"},
		{"messageDate not a date", `2026-11-23T17:00:00.000+05:00`, `yesterday`, "requestInfo/messageDate", `got "yesterday"`},
		{"messageDate month 13", `2026-11-23T17:00:00.000+05:00`, `2026-13-23T17:00:00Z`, "requestInfo/messageDate", "xs:dateTime"},
		{"missing sender", `<sender>
            <senderId>MVD_IS_ERDR</senderId>
          </sender>`, ``, "requestInfo/sender", "is required"},
		{"unknown in requestInfo", `<serviceId>`, `<foo/><serviceId>`, "requestInfo/foo", "unexpected element <foo>"},
		{"qualified requestInfo child", `<serviceId>SIO_PSO_QUERY</serviceId>`, `<typ:serviceId>SIO_PSO_QUERY</typ:serviceId>`, "requestInfo/serviceId", "must be unqualified"},
		{"property without value", `<value>ДП г. Астаны</value>`, ``, "requestInfo/properties/value", "is required"},
		{"attribute on requestInfo", `<requestInfo>`, `<requestInfo x="1">`, "requestInfo/@x", "unexpected attribute"},
		{"no data element", `<q:query`, `<q:query`, "", ""}, // placeholder replaced below
		{"basis 10", basis, `<q:basis>10</q:basis>`, "query/basis", `must be an integer from 1 to 9, got "10"`},
		{"basis not a number", basis, `<q:basis>one</q:basis>`, "query/basis", `got "one"`},
		{"basis with whitespace is fine for xs:int", basis, `<q:basis> 1 </q:basis>`, "", ""},
		{"service 94", services, `<q:service>94</q:service>`, "query/services/service", `must be an integer from 1 to 93, got "94"`},
		{"service 0", services, `<q:service>0</q:service>`, "query/services/service", `got "0"`},
		{"duplicate service", services, `<q:service>1</q:service><q:service>45</q:service>`, "query/services/service", "service 45 is listed more than once"},
		{"no services", `<q:service>1</q:service>
                <q:service>12</q:service>
                <q:service>45</q:service>`, ``, "query/services/service", "is required"},
		{"iin with 11 digits", `<q:iin>870315123455</q:iin>`, `<q:iin>87031512345</q:iin>`, "query/subject/iin", `must be 12 digits, got "87031512345"`},
		{"iin and bin", `<q:iin>870315123455</q:iin>`, `<q:iin>870315123455</q:iin><q:bin>951123300019</q:bin>`, "query/subject", "exactly one of iin or bin"},
		{"empty subject", `<q:iin>870315123455</q:iin>`, ``, "query/subject", "must hold iin or bin"},
		{"unknown element", purpose, purpose + `<q:foo>x</q:foo>`, "query/foo", "unexpected element <foo"},
		{"unknown element in no namespace", basis, `<foo/>` + basis, "query/foo", "unexpected element <foo>"},
		{"wrong element order", caseEl + "\n              " + article, article + caseEl, "query/case", "order"},
		{"subject before case", caseEl, subject + caseEl, "query/case", "is required here, found <subject"},
		{"repeated basis", basis, basis + basis, "query/case", "found <basis"},
		{"missing purpose", purpose, ``, "query/purpose", "is required"},
		{"empty purpose", purpose, `<q:purpose></q:purpose>`, "query/purpose", "must not be empty"},
		{"purpose too long", purpose, `<q:purpose>` + strings.Repeat("я", 1001) + `</q:purpose>`, "query/purpose", "1 to 1000 characters"},
		{"bad article", article, `<q:article>190.2</q:article>`, "query/article", `got "190.2"`},
		{"case number with leading space", `<q:number>267100031000123</q:number>`, `<q:number> 267</q:number>`, "query/case/number", "whitespace"},
		{"case number too long", `<q:number>267100031000123</q:number>`, `<q:number>` + strings.Repeat("1", 65) + `</q:number>`, "query/case/number", "1 to 64"},
		{"bad year", `<q:number>267100031000123</q:number>`, `<q:number>1</q:number><q:year>26</q:year>`, "query/case/year", "4 digits"},
		{"element in a simple field", `<q:basis>1</q:basis>`, `<q:basis><q:x/>1</q:basis>`, "query/basis", "text only"},
		{"text in a complex field", `<q:services>`, `<q:services>hello`, "query/services", "found text"},
		{"unknown attribute on query", `Id="id-q-`, `foo="bar" Id="id-q-`, "query/@foo", "unexpected attribute"},
		{"bad Id", `Id="id-q-7c9e6679-7425-40de-944b-e07fc1f90ae7"`, `Id="1 2"`, "query/@Id", "xs:ID"},
		{"wrong query namespace", `xmlns:q="urn:kz:sio-pso:broker:v1"`, `xmlns:q="urn:kz:sio-pso:broker:v2"`, "query", "expected <query"},
		{"two elements in data", `</q:query>`, `</q:query><x/>`, "requestData/data", "exactly one element, found 2"},
		{"missing requestData", `<requestInfo>`, `<requestInfo>`, "", ""}, // placeholder replaced below
	}
	// Two edits that are easier to write as whole replacements.
	for i := range cases {
		switch cases[i].name {
		case "no data element":
			start := strings.Index(golden, "<data>")
			end := strings.Index(golden, "</data>") + len("</data>")
			cases[i].old, cases[i].new = golden[start:end], ""
			cases[i].field, cases[i].msg = "requestData/data", "is required"
		case "missing requestData":
			start := strings.Index(golden, "<requestData>")
			end := strings.Index(golden, "</requestData>") + len("</requestData>")
			cases[i].old, cases[i].new = golden[start:end], ""
			cases[i].field, cases[i].msg = "requestData", "is required"
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(golden, c.old) {
				t.Fatalf("the golden request has no %q", c.old)
			}
			b := strings.Replace(golden, c.old, c.new, 1)
			_, _, err := parseRequest([]byte(b))
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			wantErr(t, err, siobroker.CodeSchema, c.field, c.msg)
			if !strings.HasPrefix(err.(*siobroker.Error).Message, c.field+": ") {
				t.Errorf("message %q does not start with the field", err.(*siobroker.Error).Message)
			}
		})
	}
}

// TestQueryWithSignature: an enveloped ds:Signature as the first child is skipped; anywhere else
// it is an unexpected element.
func TestQueryWithSignature(t *testing.T) {
	golden := string(readGolden(t, "request.xml"))
	sig := `<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>`
	first := strings.Replace(golden, `<q:basis>`, sig+`<q:basis>`, 1)
	if _, q, err := parseRequest([]byte(first)); err != nil || q.Basis != 1 {
		t.Fatalf("signature first: %v", err)
	}
	later := strings.Replace(golden, `<q:subject>`, sig+`<q:subject>`, 1)
	_, _, err := parseRequest([]byte(later))
	wantErr(t, err, siobroker.CodeSchema, "query/Signature", "unexpected element")
}

func TestResponseSchemaErrors(t *testing.T) {
	golden := string(readGolden(t, "reply.xml"))
	cases := []struct {
		name, old, new string
		code           siobroker.Code
		field, msg     string
	}{
		{"missing responseDate", `<responseDate>2026-11-23T17:00:02.345+05:00</responseDate>`, ``, siobroker.CodeSchema, "responseInfo/responseDate", "is required"},
		{"missing status message", `<message>Message has been processed successfully</message>`, ``, siobroker.CodeSchema, "responseInfo/status/message", "is required"},
		{"bad status", `status="timeout"`, `status="late"`, siobroker.CodeSchema, "result/service/@status", `got "late"`},
		{"service 94", `no="45"`, `no="94"`, siobroker.CodeSchema, "result/service/@no", `got "94"`},
		{"missing reason", ` reason="NO_DATA"`, ``, siobroker.CodeSchema, "result/service/@reason", "is required"},
		{"duplicate service", `no="45"`, `no="12"`, siobroker.CodeSchema, "result/service/@no", "more than once"},
		{"bad signerIin", `<q:signerIin>900101401238</q:signerIin>`, `<q:signerIin>9001</q:signerIin>`, siobroker.CodeSchema, "result/signerIin", "12 digits"},
		{"field without name", `<q:field name="firstName">`, `<q:field>`, siobroker.CodeSchema, "result/service/record/field/@name", "is required"},
		{"unknown in record", `<q:field name="firstName">`, `<q:foo/><q:field name="firstName">`, siobroker.CodeSchema, "result/service/record/foo", "unexpected element"},
		{"message after record", `<q:message>no answer within 10s</q:message>`, `<q:record type="x"/><q:message>m</q:message>`, siobroker.CodeSchema, "result/service/message", "repeated or out of order"},
		{"request instead of response", `typ:SendMessageResponse`, `typ:SendMessage`, siobroker.CodeNotSOAP, "", "SendMessageResponse"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(golden, c.old) {
				t.Fatalf("the golden reply has no %q", c.old)
			}
			_, _, err := parseReply(t, []byte(strings.ReplaceAll(golden, c.old, c.new)))
			if err == nil {
				t.Fatal("accepted")
			}
			wantErr(t, err, c.code, c.field, c.msg)
		})
	}
}

// TestLawBasesParse: the bases §1 adds from the Law (7–9) are requests like the others: the format
// takes them, with their case number; the rights decide who may use them.
func TestLawBasesParse(t *testing.T) {
	golden := string(readGolden(t, "request.xml"))
	for _, b := range []siobroker.Basis{siobroker.BasisOtherBodies, siobroker.BasisCovert, siobroker.BasisFinMonitoring} {
		req := strings.Replace(golden, `<q:basis>1</q:basis>`, fmt.Sprintf(`<q:basis>%d</q:basis>`, b), 1)
		req = strings.Replace(req, `<q:number>267100031000123</q:number>`, `<q:number>ОРД-2026/17</q:number>`, 1)
		_, q, err := parseRequest([]byte(req))
		if err != nil || q.Basis != b || q.Case.Number != "ОРД-2026/17" {
			t.Fatalf("basis %d: %+v, %v", b, q, err)
		}
	}
}
