package interop

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
)

// What the tests read in the messages themselves, and the checks of the messages with xmlsec1 and
// xmllint.

const (
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	nsWSSE   = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	nsWSU    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	nsDSig   = "http://www.w3.org/2000/09/xmldsig#"
	nsXSD    = "http://www.w3.org/2001/XMLSchema"
	nsWSDL   = "http://schemas.xmlsoap.org/wsdl/"
)

// security is what a message's wsse:Security header holds.
type security struct {
	timestamp       bool // a wsu:Timestamp
	timestampSigned bool // ... that a Reference of the ds:Signature there names
	signature       bool
}

// readSecurity reads the wsse:Security header of a SOAP 1.1 message.
func readSecurity(file string) (security, error) {
	var s security
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(file); err != nil {
		return s, err
	}
	env := doc.Root()
	if env == nil || env.Tag != "Envelope" || env.NamespaceURI() != nsSOAP11 {
		return s, fmt.Errorf("%s: not a SOAP 1.1 envelope", filepath.Base(file))
	}
	sec := child(child(env, nsSOAP11, "Header"), nsWSSE, "Security")
	if sec == nil {
		return s, nil
	}
	ts := child(sec, nsWSU, "Timestamp")
	s.timestamp = ts != nil
	sig := child(sec, nsDSig, "Signature")
	s.signature = sig != nil
	if ts == nil || sig == nil {
		return s, nil
	}
	signedInfo := child(sig, nsDSig, "SignedInfo")
	if signedInfo == nil {
		return s, fmt.Errorf("%s: a ds:Signature without ds:SignedInfo", filepath.Base(file))
	}
	for _, ref := range signedInfo.ChildElements() {
		if ref.Tag != "Reference" || ref.NamespaceURI() != nsDSig {
			continue
		}
		uri := ref.SelectAttrValue("URI", "")
		for _, a := range ts.Attr {
			if a.Key == "Id" && uri == "#"+a.Value { // wsu:Id, or node-soap's unqualified Id
				s.timestampSigned = true
			}
		}
	}
	return s, nil
}

func child(e *etree.Element, ns, local string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// checkTimestamps: the broker adds a signed wsu:Timestamp to its reply exactly when the request's
// Security header carried one, signed or not (CXF without signatureParts sends it unsigned and
// still expects one back).
func checkTimestamps(r *run) []string {
	req, err := readSecurity(r.request)
	if err != nil {
		return []string{"the request posted: " + err.Error()}
	}
	rep, err := readSecurity(r.reply)
	if err != nil {
		return []string{"the reply received: " + err.Error()}
	}
	var p []string
	if !rep.signature {
		p = append(p, "the reply has no ds:Signature in wsse:Security")
	}
	if rep.timestamp != req.timestamp {
		p = append(p, fmt.Sprintf("the reply carries a wsu:Timestamp: %v, but the request carried one: %v (the reply should have one exactly then)", rep.timestamp, req.timestamp))
	}
	if rep.timestamp && !rep.timestampSigned {
		p = append(p, "the reply's wsu:Timestamp is not signed")
	}
	return p
}

// crossCheckReply verifies the reply with xmlsec1 as well, with the broker's certificate as the
// key (xmlsec1 does not follow a SecurityTokenReference to the BinarySecurityToken).
func crossCheckReply(t *testing.T, r *run) []string {
	t.Helper()
	xmlsec1, ok := optionalTool(t, "xmlsec1", "xmlsec1")
	if !ok {
		return nil
	}
	out, err := exec.Command(xmlsec1, "--verify",
		"--pubkey-cert-pem", env.pkiPath(env.demo.Cert),
		"--id-attr:Id", nsSOAP11+":Body",
		"--id-attr:Id", nsWSU+":Timestamp",
		r.reply).CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("xmlsec1 does not verify the reply: %v\n%s", err, indent(tail(out, 12)))}
	}
	return nil
}

// ---------------------------------------------------------------- the served WSDL and XSDs

// served are the WSDL and the XSDs an endpoint serves, saved under their names with each
// schemaLocation="?xsd=NAME" rewritten to NAME, and an envelope schema importing the XSDs the WSDL
// imports.
type served struct {
	dir      string
	wsdl     []byte
	mainXSD  string      // the first XSD the WSDL imports
	xsds     []string    // every XSD reachable from the WSDL, in the order found
	imports  []xsdImport // the XSDs the WSDL's documents import, which the envelope schema imports
	envelope string      // file: soap11-envelope.xsd
}

// xsdImport is an xs:import of a WSDL's types: a namespace and the ?xsd=NAME it is served at.
type xsdImport struct{ namespace, location string }

// servedFetch fetches an endpoint's WSDL and XSDs once per test binary.
type servedFetch struct {
	once sync.Once
	s    *served
	err  error
}

var servedSync, servedAsync servedFetch

// servedSchemas are the SyncChannel endpoint's WSDL and, transitively, every XSD it names.
func servedSchemas(t *testing.T) *served {
	t.Helper()
	return servedSync.get(t, env.endpoint, "served-xsd")
}

// servedAsyncSchemas are the AsyncChannel v10 endpoint's: its WSDL, the WSDL that one imports as
// ?wsdl=NAME, and every XSD they name.
func servedAsyncSchemas(t *testing.T) *served {
	t.Helper()
	return servedAsync.get(t, env.base+asyncPath, "served-async-xsd")
}

func (f *servedFetch) get(t *testing.T, endpoint, dir string) *served {
	t.Helper()
	f.once.Do(func() { f.s, f.err = fetchSchemas(endpoint, filepath.Join(env.tmp, dir)) })
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.s
}

func fetchSchemas(endpoint, dir string) (*served, error) {
	s := &served{dir: dir}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.wsdl, err = get(endpoint + "?wsdl"); err != nil {
		return nil, err
	}
	// The WSDL documents: ?wsdl and those it imports (wsdl:import location="?wsdl=NAME").
	var locs []string
	wsdls, seenWSDL := [][]byte{s.wsdl}, map[string]bool{}
	for len(wsdls) > 0 {
		more, imports, err := wsdlImports(wsdls[0])
		wsdls = wsdls[1:]
		if err != nil {
			return nil, fmt.Errorf("?wsdl: %w", err)
		}
		for _, im := range imports {
			s.imports = append(s.imports, im)
			locs = append(locs, im.location)
		}
		for _, loc := range more {
			name, ok := strings.CutPrefix(loc, "?wsdl=")
			if !ok || name == "" || path.Base(name) != name || strings.ContainsAny(name, `\&#`) {
				return nil, fmt.Errorf("wsdl:import location %q is not of the form ?wsdl=NAME", loc)
			}
			if seenWSDL[name] {
				continue
			}
			seenWSDL[name] = true
			body, err := get(endpoint + loc)
			if err != nil {
				return nil, err
			}
			wsdls = append(wsdls, body)
		}
	}
	if len(locs) == 0 {
		return nil, fmt.Errorf("?wsdl names no schemaLocation")
	}
	seen := map[string]bool{}
	for len(locs) > 0 {
		loc := locs[0]
		locs = locs[1:]
		name, ok := strings.CutPrefix(loc, "?xsd=")
		if !ok || name == "" || path.Base(name) != name || strings.ContainsAny(name, `\&#`) {
			return nil, fmt.Errorf("schemaLocation %q is not of the form ?xsd=NAME", loc)
		}
		if s.mainXSD == "" {
			s.mainXSD = name
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		body, err := get(endpoint + loc)
		if err != nil {
			return nil, err
		}
		more, err := schemaLocations(body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		text := string(body)
		for _, m := range more {
			text = strings.ReplaceAll(text, `schemaLocation="`+m+`"`, `schemaLocation="`+strings.TrimPrefix(m, "?xsd=")+`"`)
		}
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
		s.xsds = append(s.xsds, name)
		locs = append(locs, more...)
	}
	s.envelope = filepath.Join(s.dir, "soap11-envelope.xsd")
	var imports strings.Builder
	for _, im := range s.imports {
		fmt.Fprintf(&imports, "\n  <xs:import namespace=\"%s\" schemaLocation=\"%s\"/>", im.namespace, strings.TrimPrefix(im.location, "?xsd="))
	}
	envelope := strings.Replace(envelopeXSD, "\n  IMPORTS", imports.String(), 1)
	if err := os.WriteFile(s.envelope, []byte(envelope), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s\n%s", url, resp.Status, tail(body, 10))
	}
	return body, nil
}

// schemaLocations are the schemaLocation attributes of the xs:import and xs:include elements of a
// WSDL or an XSD, in document order.
func schemaLocations(doc []byte) ([]string, error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, err
	}
	var out []string
	var walk func(e *etree.Element)
	walk = func(e *etree.Element) {
		if (e.Tag == "import" || e.Tag == "include") && e.NamespaceURI() == nsXSD {
			if loc := e.SelectAttrValue("schemaLocation", ""); loc != "" {
				out = append(out, loc)
			}
		}
		for _, c := range e.ChildElements() {
			walk(c)
		}
	}
	if d.Root() == nil {
		return nil, fmt.Errorf("no root element")
	}
	walk(d.Root())
	return out, nil
}

// wsdlImports are the wsdl:import locations of a WSDL document and the xs:imports of its types
// that name a schemaLocation, in document order.
func wsdlImports(doc []byte) (wsdls []string, xsds []xsdImport, err error) {
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		return nil, nil, err
	}
	if d.Root() == nil {
		return nil, nil, fmt.Errorf("no root element")
	}
	for _, e := range d.Root().FindElements("//import") {
		switch e.NamespaceURI() {
		case nsWSDL:
			wsdls = append(wsdls, e.SelectAttrValue("location", ""))
		case nsXSD:
			if loc := e.SelectAttrValue("schemaLocation", ""); loc != "" {
				xsds = append(xsds, xsdImport{e.SelectAttrValue("namespace", ""), loc})
			}
		}
	}
	return wsdls, xsds, nil
}

// validateMessages validates SyncChannel messages against the served XSDs with xmllint, through a
// local envelope schema (the published SOAP 1.1 schema is remote; xmllint runs with --nonet).
func validateMessages(t *testing.T, files ...string) []string {
	t.Helper()
	if _, ok := optionalTool(t, "xmllint", "libxml2-utils"); !ok {
		return nil
	}
	return validateWith(t, servedSchemas(t), files...)
}

// validateWith validates SOAP messages with xmllint against s's envelope schema.
func validateWith(t *testing.T, s *served, files ...string) []string {
	t.Helper()
	xmllint, ok := optionalTool(t, "xmllint", "libxml2-utils")
	if !ok {
		return nil
	}
	var p []string
	for _, f := range files {
		out, err := exec.Command(xmllint, "--noout", "--nonet", "--schema", s.envelope, f).CombinedOutput()
		if err != nil {
			p = append(p, fmt.Sprintf("xmllint: %s does not validate against the served XSDs: %v\n%s", filepath.Base(f), err, indent(tail(out, 12))))
		}
	}
	return p
}

// envelopeXSD is a reduced SOAP 1.1 envelope schema, as testdata/soap/soap11-envelope.xsd, that
// imports the XSDs the served WSDL imports (IMPORTS). Body children are validated laxly, which makes
// xmllint check typ:SendMessage, typ:SendMessageResponse and the fault detail and, through the
// types XSD's lax data element, q:query and q:result (and so for AsyncChannel v10's operations,
// its anyType data and its faults); the WS-Security header is skipped. Unlike the SOAP 1.1
// schema, soap:Body takes attributes of any namespace: node-soap (xml-crypto's default idMode)
// puts an unqualified Id on it, which the broker accepts, and that is no concern of our XSDs.
const envelopeXSD = `<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:tns="http://schemas.xmlsoap.org/soap/envelope/"
           targetNamespace="http://schemas.xmlsoap.org/soap/envelope/"
           elementFormDefault="qualified">
  IMPORTS
  <xs:element name="Envelope">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="tns:Header" minOccurs="0"/>
        <xs:element ref="tns:Body"/>
      </xs:sequence>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Header">
    <xs:complexType>
      <xs:sequence>
        <xs:any namespace="##other" processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:anyAttribute namespace="##other" processContents="lax"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Body">
    <xs:complexType>
      <xs:choice>
        <xs:element ref="tns:Fault"/>
        <xs:any namespace="##other" processContents="lax"/>
      </xs:choice>
      <xs:anyAttribute namespace="##any" processContents="skip"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="Fault">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="faultcode" type="xs:QName" form="unqualified"/>
        <xs:element name="faultstring" type="xs:string" form="unqualified"/>
        <xs:element name="faultactor" type="xs:anyURI" form="unqualified" minOccurs="0"/>
        <xs:element name="detail" form="unqualified" minOccurs="0">
          <xs:complexType>
            <xs:sequence>
              <xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence>
          </xs:complexType>
        </xs:element>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
`
