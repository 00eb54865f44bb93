package soap

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

var faultTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) // 17:00 in Astana

func TestFaultShape(t *testing.T) {
	cases := []struct {
		name                      string
		err                       error
		faultcode, code, msg, fld string
	}{
		{"schema error", siobroker.FieldError("query/basis", "must be an integer from 1 to 6, got %q", "7"),
			"soapenv:Client", "SIO-SCHEMA", `query/basis: must be an integer from 1 to 6, got "7"`, "query/basis"},
		{"wrapped client error", fmt.Errorf("verify: %w", siobroker.Errorf(siobroker.CodeSigInvalid, "the signature does not verify")),
			"soapenv:Client", "SIO-SIG-INVALID", "the signature does not verify", ""},
		{"unavailable", siobroker.Errorf(siobroker.CodeUnavailable, "shutting down"),
			"soapenv:Server", "SIO-UNAVAILABLE", "shutting down", ""},
		{"revocation status unknown: retry later", siobroker.Wrap(siobroker.CodeCertStatus, errors.New("dial tcp 10.0.0.9:80: connection refused"), "the revocation status is unknown"),
			"soapenv:Server", "SIO-CERT-STATUS-UNKNOWN", "the revocation status is unknown", ""},
		{"rate limited: a retry may succeed", siobroker.Errorf(siobroker.CodeRateLimited, "too many requests"),
			"soapenv:Server", "SIO-RATE-LIMITED", "too many requests", ""},
		{"too many connections: a retry may succeed", siobroker.Errorf(siobroker.CodeTooManyConnections, "too many connections"),
			"soapenv:Server", "SIO-TOO-MANY-CONNECTIONS", "too many connections", ""},
		{"plain error is internal and not disclosed", errors.New("db password wrong at 10.0.0.1"),
			"soapenv:Server", "SIO-INTERNAL", "internal error", ""},
		{"message needing escapes", siobroker.Errorf(siobroker.CodeMalformed, `a <b> & "c"`),
			"soapenv:Client", "SIO-XML-MALFORMED", `a <b> & "c"`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := FaultXML(c.err, faultTime)
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(b); err != nil {
				t.Fatalf("not XML: %v\n%s", err, b)
			}
			f := doc.FindElement("/Envelope/Body/Fault")
			if f == nil || f.NamespaceURI() != schemas.NSSoapEnv {
				t.Fatalf("no soapenv:Fault:\n%s", b)
			}
			get := func(path string) string {
				e := f.FindElement(path)
				if e == nil {
					return "<absent>"
				}
				return e.Text()
			}
			checks := map[string]string{
				"faultcode":   c.faultcode,
				"faultstring": c.msg,
				"detail/SendMessageFault1_SendMessageFault/errorCode":    c.code,
				"detail/SendMessageFault1_SendMessageFault/errorMessage": c.msg,
				"detail/SendMessageFault1_SendMessageFault/errorDate":    "2026-11-23T17:00:00.000+05:00",
			}
			if c.fld != "" {
				checks["detail/SendMessageFault1_SendMessageFault/errorData"] = c.fld
			} else {
				checks["detail/SendMessageFault1_SendMessageFault/errorData"] = "<absent>"
			}
			for p, want := range checks {
				if got := get(p); got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
			if d := f.FindElement("detail/SendMessageFault1_SendMessageFault"); d.NamespaceURI() != schemas.NSSyncTypes {
				t.Errorf("detail element in namespace %q", d.NamespaceURI())
			}
			if strings.Contains(string(b), "10.0.0.1") {
				t.Error("an internal error's text leaked into the fault")
			}

			// The client reads back what was sent.
			e, ok := ParseFault(b)
			if !ok {
				t.Fatal("ParseFault did not recognise the fault")
			}
			if string(e.Code) != c.code || e.Message != c.msg || e.Field != c.fld {
				t.Errorf("ParseFault = %+v", e)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	cases := map[siobroker.Code]int{
		siobroker.CodeOversize:           413,
		siobroker.CodeMethod:             405,
		siobroker.CodeRateLimited:        429,
		siobroker.CodeTooManyConnections: 429,
		siobroker.CodeSchema:             500,
		siobroker.CodeInternal:           500,
		siobroker.CodeUnavailable:        500,
		siobroker.CodeSigInvalid:         500,
		siobroker.CodeContentType:        500,
		siobroker.Code("SIO-NEW"):        500,
	}
	for code, want := range cases {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%s) = %d, want %d", code, got, want)
		}
	}
}

func TestWriteFault(t *testing.T) {
	cases := []struct {
		err        error
		status     int
		allow      string
		retryAfter string
	}{
		{siobroker.Errorf(siobroker.CodeSchema, "x"), 500, "", ""},
		{siobroker.Errorf(siobroker.CodeOversize, "too big"), 413, "", ""},
		{siobroker.Errorf(siobroker.CodeMethod, "POST only"), 405, "POST", ""},
		// A 429 always says when to retry: what the cause says, rounded up, else a second.
		{siobroker.Wrap(siobroker.CodeRateLimited, &RetryAfter{Wait: 2100 * time.Millisecond}, "slow down"), 429, "", "3"},
		{siobroker.Wrap(siobroker.CodeRateLimited, &RetryAfter{Wait: time.Millisecond}, "slow down"), 429, "", "1"},
		{siobroker.Errorf(siobroker.CodeTooManyConnections, "close one"), 429, "", "1"},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		WriteFault(rec, c.err, faultTime)
		if rec.Code != c.status {
			t.Errorf("%v: status %d, want %d", c.err, rec.Code, c.status)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/xml; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if got := rec.Header().Get("Allow"); got != c.allow {
			t.Errorf("Allow %q, want %q", got, c.allow)
		}
		if got := rec.Header().Get("Retry-After"); got != c.retryAfter {
			t.Errorf("%v: Retry-After %q, want %q", c.err, got, c.retryAfter)
		}
		if e, ok := ParseFault(rec.Body.Bytes()); !ok || e.Code != siobroker.ErrorCode(c.err) {
			t.Errorf("body is not the fault: %s", rec.Body)
		}
	}
	var _ http.ResponseWriter = httptest.NewRecorder()
}

func TestParseFaultNotAFault(t *testing.T) {
	cases := map[string]string{
		"reply":     string(readGolden(t, "reply.xml")),
		"not xml":   "<html>bad gateway",
		"doctype":   `<!DOCTYPE x><x/>`,
		"not soap":  `<Fault/>`,
		"empty":     ``,
		"html page": `<html><body>502</body></html>`,
	}
	for name, body := range cases {
		if e, ok := ParseFault([]byte(body)); ok {
			t.Errorf("%s: recognised as a fault: %+v", name, e)
		}
	}
	// A fault without the gateway detail, e.g. from a proxy in front of the broker.
	bare := `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>upstream down</faultstring></s:Fault></s:Body></s:Envelope>`
	e, ok := ParseFault([]byte(bare))
	if !ok || e.Code != siobroker.CodeInternal || e.Message != "upstream down" {
		t.Errorf("bare fault = %+v, %v", e, ok)
	}
}

func TestParseResponseFault(t *testing.T) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(FaultXML(siobroker.Errorf(siobroker.CodeUserBlocked, "blocked"), faultTime)); err != nil {
		t.Fatal(err)
	}
	_, _, err := ParseResponse(Body(doc))
	wantErr(t, err, siobroker.CodeUserBlocked, "", "blocked")
}
