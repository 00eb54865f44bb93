package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/schemas"
)

const minimalEnvelope = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types"/></soapenv:Body></soapenv:Envelope>`

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types">&lol9;</typ:SendMessage></soapenv:Body></soapenv:Envelope>`

func nested(depth int) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types">` +
		strings.Repeat("<a>", depth) + strings.Repeat("</a>", depth) + `</typ:SendMessage></soapenv:Body></soapenv:Envelope>`
}

// readCase is one body for ReadEnvelope and the code it must be refused with ("" to be read).
type readCase struct {
	name        string
	body        string
	contentType string
	lim         Limits
	code        siobroker.Code
}

// readCases are the bodies TestReadEnvelopeRefusals reads; FuzzReadEnvelope starts from them too.
// golden is testdata/soap/request.xml.
func readCases(golden string) []readCase {
	env := func(body string) string {
		return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">` + body + `</soapenv:Envelope>`
	}
	return []readCase{
		{"accepted: minimal", minimalEnvelope, "", Limits{}, ""},
		{"accepted: golden with BOM", "\xEF\xBB\xBF" + golden, "text/xml", Limits{}, ""},
		{"accepted: exactly MaxBytes", minimalEnvelope, "", Limits{MaxBytes: int64(len(minimalEnvelope))}, ""},
		{"accepted: comment", "<!-- hi -->" + minimalEnvelope, "", Limits{}, ""},

		{"oversize", golden, "", Limits{MaxBytes: int64(len(golden) - 1)}, siobroker.CodeOversize},
		{"oversize: 1 MiB default", `<a>` + strings.Repeat("x", 1<<20) + `</a>`, "", Limits{}, siobroker.CodeOversize},

		{"doctype", `<!DOCTYPE Envelope>` + minimalEnvelope, "", Limits{}, siobroker.CodeDoctype},
		{"doctype: billion laughs", billionLaughs, "", Limits{}, siobroker.CodeDoctype},
		{"doctype: external entity", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`, "", Limits{}, siobroker.CodeDoctype},

		{"pi: before root", `<?xml version="1.0"?><?xml-stylesheet href="a.xsl"?>` + minimalEnvelope, "", Limits{}, siobroker.CodeProcInst},
		{"pi: inside body", strings.Replace(minimalEnvelope, "<soapenv:Body>", "<soapenv:Body><?php echo 1 ?>", 1), "", Limits{}, siobroker.CodeProcInst},

		{"encoding: charset in content type", golden, "text/xml; charset=windows-1251", Limits{}, siobroker.CodeEncoding},
		{"encoding: declaration", `<?xml version="1.0" encoding="ISO-8859-1"?>` + minimalEnvelope, "", Limits{}, siobroker.CodeEncoding},
		{"encoding: invalid bytes", strings.Replace(minimalEnvelope, "<soapenv:Body>", "<soapenv:Body>\xC0\xAF", 1), "", Limits{}, siobroker.CodeEncoding},
		{"encoding: UTF-16 BOM", "\xFF\xFE<\x00a\x00/\x00>\x00", "", Limits{}, siobroker.CodeEncoding},
		{"content type malformed", golden, "text/xml; charset", Limits{}, siobroker.CodeContentType},

		{"malformed: unclosed", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>`, "", Limits{}, siobroker.CodeMalformed},
		{"malformed: mismatched", `<a></b>`, "", Limits{}, siobroker.CodeMalformed},
		{"malformed: two roots", minimalEnvelope + minimalEnvelope, "", Limits{}, siobroker.CodeMalformed},
		{"malformed: text after root", minimalEnvelope + "x", "", Limits{}, siobroker.CodeMalformed},
		{"malformed: empty", "", "", Limits{}, siobroker.CodeMalformed},
		{"malformed: undefined entity", `<a>&foo;</a>`, "", Limits{}, siobroker.CodeMalformed},
		{"malformed: late declaration", ` <?xml version="1.0"?>` + minimalEnvelope, "", Limits{}, siobroker.CodeMalformed},

		{"too deep", nested(100), "", Limits{}, siobroker.CodeTooDeep},
		{"too deep: own limit", nested(10), "", Limits{MaxDepth: 8}, siobroker.CodeTooDeep},
		{"too many elements", `<a>` + strings.Repeat("<b/>", 30) + `</a>`, "", Limits{MaxElements: 20}, siobroker.CodeTooDeep},

		{"not soap: other root", `<Envelope/>`, "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: SOAP 1.2", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`, "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: no body", env(`<soapenv:Header/>`), "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: two bodies", env(`<soapenv:Body/><soapenv:Body/>`), "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: header after body", env(`<soapenv:Body><typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types"/></soapenv:Body><soapenv:Header/>`), "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: empty body", env(`<soapenv:Body/>`), "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: two children", env(`<soapenv:Body><typ:SendMessage xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types"/><x/></soapenv:Body>`), "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: wrong operation", env(`<soapenv:Body><typ:SendMessageResponse xmlns:typ="http://bip.bee.kz/SyncChannel/v10/Types"/></soapenv:Body>`), "", Limits{}, siobroker.CodeNotSOAP},
		{"not soap: unqualified SendMessage", env(`<soapenv:Body><SendMessage/></soapenv:Body>`), "", Limits{}, siobroker.CodeNotSOAP},
	}
}

func TestReadEnvelopeRefusals(t *testing.T) {
	for _, c := range readCases(string(readGolden(t, "request.xml"))) {
		t.Run(c.name, func(t *testing.T) {
			doc, raw, err := ReadEnvelope(strings.NewReader(c.body), c.contentType, c.lim)
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if doc == nil || string(raw) != c.body {
					t.Fatal("no document, or raw bytes differ from the input")
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %s", c.code)
			}
			if doc != nil || raw != nil {
				t.Error("a refusal returned a document")
			}
			wantErr(t, err, c.code, "", "")
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadEnvelopeReaderErrors(t *testing.T) {
	_, _, err := ReadEnvelope(failingReader{}, "", Limits{})
	wantErr(t, err, siobroker.CodeMalformed, "", "could not be read")
	if !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("the cause is lost: %v", err)
	}

	// http.MaxBytesReader set by the HTTP layer reports oversize, not malformed.
	rec := httptest.NewRecorder()
	r := http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(minimalEnvelope)), 10)
	_, _, err = ReadEnvelope(r, "", Limits{})
	wantErr(t, err, siobroker.CodeOversize, "", "")
}

// The limit reads MaxBytes+1 bytes and no more, so a huge body costs no more than that.
func TestReadEnvelopeReadsAtMostLimit(t *testing.T) {
	cr := &countingReader{r: strings.NewReader(strings.Repeat("x", 10000))}
	_, _, err := ReadEnvelope(cr, "", Limits{MaxBytes: 100})
	wantErr(t, err, siobroker.CodeOversize, "", "")
	if cr.n > 101 {
		t.Errorf("read %d bytes with a limit of 100", cr.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestLimitsWithDefaults(t *testing.T) {
	got := Limits{MaxDepth: 5, MaxBytes: -1}.WithDefaults()
	want := Limits{MaxBytes: 1 << 20, MaxDepth: 5, MaxElements: 20000, MaxAttributes: 64, MaxNamespaceDecls: 16,
		MaxNamespaceDeclsTotal: 512, MaxNameBytes: 256, MaxAttrValueBytes: 8192, MaxTextBytes: 1 << 20}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := (Limits{MaxBytes: 100}).WithDefaults().MaxTextBytes; got != 100 {
		t.Errorf("MaxTextBytes defaults to %d, want MaxBytes (100)", got)
	}
}

// TestReadEnvelopePerElementLimits: what one element may carry is bounded, each limit refused
// with CodeTooDeep and a message that says which, and a body exactly at a limit is read.
func TestReadEnvelopePerElementLimits(t *testing.T) {
	// parseXML does not look at the SOAP shape, and the envelope's own namespace would not fit
	// these small limits.
	inBody := func(s string) string { return "<r>" + s + "</r>" }
	attrs := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	lim := Limits{MaxAttributes: 4, MaxNamespaceDecls: 2, MaxNamespaceDeclsTotal: 3, MaxNameBytes: 8, MaxAttrValueBytes: 10, MaxTextBytes: 12}
	cases := []struct {
		name, body, msg string // msg "" means accepted
	}{
		{"attributes at the limit", inBody(`<x` + attrs(4, ` a%d="v"`) + `/>`), ""},
		{"attributes over", inBody(`<x` + attrs(5, ` a%d="v"`) + `/>`), "element x has more than 4 attributes"},
		{"declarations count as attributes", inBody(`<x` + attrs(2, ` xmlns:p%d="u"`) + attrs(3, ` a%d="v"`) + `/>`), "element x has more than 4 attributes"},
		{"declarations on an element at the limit", inBody(`<x` + attrs(2, ` xmlns:p%d="u"`) + `/>`), ""},
		{"declarations on an element over", inBody(`<x` + attrs(3, ` xmlns:p%d="u"`) + `/>`), "element x declares more than 2 namespaces"},
		{"default namespace counts", inBody(`<x xmlns="u"` + attrs(2, ` xmlns:p%d="u"`) + `/>`), "element x declares more than 2 namespaces"},
		{"declarations in total over", inBody(`<x xmlns:a="u"><y xmlns:b="u"/><y xmlns:c="u"/><y xmlns:d="u"/></x>`), "the body declares more than 3 namespaces"},
		{"element name at the limit", inBody(`<abcdefgh/>`), ""},
		{"element name over", inBody(`<abcdefghi/>`), "an element name (abcdefghi) is longer than 8 bytes"},
		{"attribute name over", inBody(`<x abcdefghi="v"/>`), "an attribute name (abcdefghi) of element x is longer than 8 bytes"},
		{"prefix over", inBody(`<x xmlns:abcdefghi="u"/>`), "an attribute name (abcdefghi) of element x is longer than 8 bytes"},
		{"undeclared prefix over", inBody(`<abcdefghijk:x/>`), "the namespace of element x is longer than 10 bytes"},
		{"attribute value at the limit", inBody(`<x a="0123456789"/>`), ""},
		{"attribute value over", inBody(`<x a="0123456789A"/>`), "the value of attribute a of element x is longer than 10 bytes"},
		{"namespace URI over", inBody(`<x xmlns:p="0123456789A"/>`), "the value of attribute p of element x is longer than 10 bytes"},
		{"text at the limit", inBody(`<x>0123456789AB</x>`), ""},
		{"text over", inBody(`<x>0123456789ABC</x>`), "a text is longer than 12 bytes"},
		{"text over in pieces", inBody(`<x>0123456<![CDATA[789ABC]]></x>`), "a text is longer than 12 bytes"},
		{"comment over", inBody(`<!--0123456789ABC-->`), "a comment is longer than 12 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseXML([]byte(c.body), lim.WithDefaults())
			if c.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantErr(t, err, siobroker.CodeTooDeep, "", c.msg)
		})
	}
	// A long name is not repeated whole in the message.
	_, err := parseXML([]byte(inBody("<"+strings.Repeat("n", 1000)+"/>")), Limits{}.WithDefaults())
	wantErr(t, err, siobroker.CodeTooDeep, "", "an element name (nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn…) is longer than 256 bytes")
}

func TestBody(t *testing.T) {
	if Body(nil) != nil {
		t.Error("Body(nil) is not nil")
	}
	doc, _, err := ReadEnvelope(bytes.NewReader(readGolden(t, "request.xml")), "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b := Body(doc)
	if b == nil || b.Tag != "Body" {
		t.Fatalf("Body = %v", b)
	}
	// A detached copy, as a signature verifier returns, still works: its namespaces are declared
	// where used.
	ri, data, err := SendMessageParts(b.Copy())
	if err != nil || ri == nil || data == nil {
		t.Fatalf("SendMessageParts on a detached Body: %v", err)
	}
	if _, _, err := SendMessageParts(nil); err == nil {
		t.Error("nil Body accepted")
	}
	if _, _, err := SendMessageParts(ri); err == nil {
		t.Error("a non-Body element accepted")
	}
}

// TestBodyElement: the element of the Body is named when the body contains one of the names looked
// for (then the decoder reads as far as the Body's element), and the reader returned gives the
// body whole; a body that never gets there names none.
func TestBodyElement(t *testing.T) {
	const env = `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">` +
		`<s:Header><wsse:Security xmlns:wsse="x"><Body/><s:Body/></wsse:Security></s:Header>` +
		`<s:Body><op:GetMaintenanceWindows xmlns:op="urn:kz:sio-pso:broker:operations:v1"><request/></op:GetMaintenanceWindows></s:Body></s:Envelope>`
	for name, c := range map[string]struct {
		body string
		want xml.Name
	}{
		"operation after a header": {env, xml.Name{Space: schemas.NSOperations, Local: "GetMaintenanceWindows"}},
		"SendMessage":              {strings.Replace(strings.Replace(env, "op:GetMaintenanceWindows", "typ:SendMessage", 2), `xmlns:op="urn:kz:sio-pso:broker:operations:v1"`, `xmlns:typ="`+schemas.NSSyncTypes+`"`, 1), xml.Name{Space: schemas.NSSyncTypes, Local: "SendMessage"}},
		"empty Body":               {`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body></s:Body></s:Envelope>`, xml.Name{}},
		"not XML":                  {"GET / HTTP/1.1", xml.Name{}},
		// Named at its start, before any entity is met; none is expanded on the way.
		"entities":           {billionLaughs, xml.Name{Space: schemas.NSSyncTypes, Local: "SendMessage"}},
		"a Body of SOAP 1.2": {`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x/></s:Body></s:Envelope>`, xml.Name{}},
	} {
		got, r := BodyElementAmong(strings.NewReader(c.body), lookedFor)
		if got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
		if all, err := io.ReadAll(r); err != nil || string(all) != c.body {
			t.Errorf("%s: the body given back is %q, %v", name, all, err)
		}
	}
}

// lookedFor are the elements TestBodyElement looks for.
var lookedFor = []xml.Name{{Space: schemas.NSOperations, Local: "GetMaintenanceWindows"}, {Space: schemas.NSSyncTypes, Local: "SendMessage"}}

// TestBodyElementAmong: the endpoint's operations are named as TestBodyElement shows; a body that
// holds none of their names is given back whole, named nothing, without the decoder; a body that
// only mentions one (in a header's text) is read by the decoder and named what its Body holds;
// a read error of the source is given back after the bytes read.
func TestBodyElementAmong(t *testing.T) {
	const env = `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">` +
		`<s:Header><h>HEADER</h></s:Header>` +
		`<s:Body><op:GetMaintenanceWindows xmlns:op="urn:kz:sio-pso:broker:operations:v1"><request/></op:GetMaintenanceWindows></s:Body></s:Envelope>`
	windows := xml.Name{Space: schemas.NSOperations, Local: "GetMaintenanceWindows"}
	send := strings.Replace(strings.Replace(env, "op:GetMaintenanceWindows", "typ:SendMessage", 2),
		`xmlns:op="urn:kz:sio-pso:broker:operations:v1"`, `xmlns:typ="`+schemas.NSSyncTypes+`"`, 1)
	among := []xml.Name{windows}
	for name, c := range map[string]struct {
		body string
		want xml.Name
	}{
		"the operation":          {env, windows},
		"the main request":       {send, xml.Name{}},
		"a mention in a header":  {strings.Replace(send, "HEADER", "GetMaintenanceWindows", 1), xml.Name{Space: schemas.NSSyncTypes, Local: "SendMessage"}},
		"the operation, another": {strings.Replace(env, "urn:kz:sio-pso:broker:operations:v1", "urn:other", 1), xml.Name{Space: "urn:other", Local: "GetMaintenanceWindows"}},
		"not XML":                {"GET / HTTP/1.1", xml.Name{}},
	} {
		for _, pieces := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
			got, r := BodyElementAmong(pieces(strings.NewReader(c.body)), among)
			if got != c.want {
				t.Errorf("%s: %v, want %v", name, got, c.want)
			}
			if all, err := io.ReadAll(r); err != nil || string(all) != c.body {
				t.Errorf("%s: the body given back is %q, %v", name, all, err)
			}
		}
	}
	boom := errors.New("boom")
	for _, body := range []string{send, env} {
		got, rest := BodyElementAmong(io.MultiReader(strings.NewReader(body[:100]), iotest.ErrReader(boom)), among)
		if got != (xml.Name{}) {
			t.Errorf("a body cut short named %v", got)
		}
		if all, err := io.ReadAll(rest); !errors.Is(err, boom) || string(all) != body[:100] {
			t.Errorf("after a read error: %q, %v", all, err)
		}
	}
}

// TestBodyElementReadsInPieces: the body is given back whole whatever pieces its source hands
// over, and a read error of the source is not lost.
func TestBodyElementReadsInPieces(t *testing.T) {
	body := `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>` + strings.Repeat("<h>x</h>", 1500) +
		`</s:Header><s:Body><typ:SendMessage xmlns:typ="` + schemas.NSSyncTypes + `"/></s:Body></s:Envelope>`
	want := xml.Name{Space: schemas.NSSyncTypes, Local: "SendMessage"}
	for name, r := range map[string]func() io.Reader{
		"whole":           func() io.Reader { return strings.NewReader(body) },
		"one byte a time": func() io.Reader { return iotest.OneByteReader(strings.NewReader(body)) },
		"data with EOF":   func() io.Reader { return iotest.DataErrReader(strings.NewReader(body)) },
		"half at a time":  func() io.Reader { return iotest.HalfReader(strings.NewReader(body)) },
	} {
		got, rest := BodyElementAmong(r(), []xml.Name{want})
		if got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
		if all, err := io.ReadAll(rest); err != nil || string(all) != body {
			t.Errorf("%s: the body given back is %d bytes, %v; want %d", name, len(all), err, len(body))
		}
	}
	boom := errors.New("boom")
	got, rest := BodyElementAmong(io.MultiReader(strings.NewReader(body[:100]), iotest.ErrReader(boom)), []xml.Name{want})
	if got != (xml.Name{}) {
		t.Errorf("a body cut short named %v", got)
	}
	if all, err := io.ReadAll(rest); !errors.Is(err, boom) || string(all) != body[:100] {
		t.Errorf("after a read error: %q, %v", all, err)
	}
}
