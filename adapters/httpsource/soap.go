package httpsource

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/xmlchild"
	"github.com/sio-pso/siobroker/schemas"
)

// MethodSOAP is Spec.Method for a SOAP 1.1 call: a POST of a soap:Envelope whose Body holds
// Spec.SOAPBody, with the SOAPAction header. Its answer is a soap:Envelope: the elements at
// RecordsPath below its Body are the records, none is NO_DATA, and a soap:Fault (with HTTP 500,
// as SOAP 1.1 has it, or 200) is an error naming the fault's code only, since a source's fault
// text may repeat the subject it was asked about.
const MethodSOAP = "SOAP"

const soapEnvelopeNS = "http://schemas.xmlsoap.org/soap/envelope/"

// placeholder is ${name} in a SOAP body.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// validateSOAP checks the parts of a SOAP spec: a body that is one well-formed element whose
// placeholders all name request values, and "/"-separated paths.
func (s Spec) validateSOAP() []error {
	var errs []error
	if strings.TrimSpace(s.SOAPBody) == "" {
		errs = append(errs, errors.New("soap_body: method SOAP needs the element to send in the soap:Body"))
	} else {
		for _, m := range placeholder.FindAllStringSubmatch(s.SOAPBody, -1) {
			if _, ok := adapters.Params[m[1]]; !ok {
				errs = append(errs, fmt.Errorf("soap_body: ${%s} is not one of %s", m[1], strings.Join(adapters.ParamNames(), ", ")))
			}
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromString(placeholder.ReplaceAllString(s.SOAPBody, "0")); err != nil {
			errs = append(errs, fmt.Errorf("soap_body: not well-formed XML: %w", err))
		} else if n := len(doc.ChildElements()); n != 1 {
			errs = append(errs, fmt.Errorf("soap_body: must be one element, has %d", n))
		}
	}
	if strings.ContainsAny(s.SOAPAction, "\"\r\n") {
		errs = append(errs, errors.New("soap_action: must not hold quotes or line breaks"))
	}
	if s.RecordsPath == "" || slices.Contains(strings.Split(s.RecordsPath, "/"), "") || strings.Contains(s.RecordsPath, "@") {
		errs = append(errs, fmt.Errorf("records_path: %q must be the \"/\"-separated element path of the records below soap:Body", s.RecordsPath))
	}
	for name, key := range s.Fields {
		steps := strings.Split(key, "/")
		bad := slices.Contains(steps, "") || slices.Contains(steps, "@")
		for i, step := range steps {
			bad = bad || (strings.Contains(step, "@") && (i != len(steps)-1 || !strings.HasPrefix(step, "@") || strings.Count(step, "@") > 1))
		}
		if bad {
			errs = append(errs, fmt.Errorf("fields.%s: %q is not a \"/\"-separated element path, with at most a last @attribute", name, key))
		}
	}
	return errs
}

// soapBody is a SOAP body split at its placeholders: literal XML and the request values between.
type soapBody struct {
	literal []string                              // len(values)+1 pieces
	values  []func(schemas.ServiceRequest) string // one per placeholder
}

// parseSOAPBody splits a validated body.
func parseSOAPBody(body string) soapBody {
	var sb soapBody
	at := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(body, -1) {
		sb.literal = append(sb.literal, body[at:m[0]])
		sb.values = append(sb.values, adapters.Params[body[m[2]:m[3]]])
		at = m[1]
	}
	sb.literal = append(sb.literal, body[at:])
	return sb
}

// envelope is the request's soap:Envelope, the request values XML-escaped into the body.
func (sb soapBody) envelope(req schemas.ServiceRequest) []byte {
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soapenv:Envelope xmlns:soapenv="` + soapEnvelopeNS + `"><soapenv:Header/><soapenv:Body>`)
	for i, lit := range sb.literal {
		buf.WriteString(lit)
		if i < len(sb.values) {
			_ = xml.EscapeText(&buf, []byte(sb.values[i](req))) // a bytes.Buffer does not fail
		}
	}
	buf.WriteString(`</soapenv:Body></soapenv:Envelope>`)
	return buf.Bytes()
}

// soapAnswer reads a SOAP answer: 200 with the records, or a fault with 500 (or 200). Other
// statuses are the errors they are for the other methods, transient where the source may be
// back shortly.
func (b *Backend) soapAnswer(resp *http.Response) ([]siobroker.Record, error) {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
		return nil, b.statusError(resp)
	}
	body, err := b.readBody(resp)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil || doc.Root() == nil {
		return nil, fmt.Errorf("%s %s: status %s, the answer is not XML", MethodSOAP, b.spec.URL, resp.Status)
	}
	env := doc.Root()
	if env.Tag != "Envelope" || env.NamespaceURI() != soapEnvelopeNS {
		return nil, fmt.Errorf("%s %s: status %s, the answer is not a SOAP 1.1 envelope", MethodSOAP, b.spec.URL, resp.Status)
	}
	soapBody := xmlchild.First(env, "Body")
	if soapBody == nil {
		return nil, fmt.Errorf("%s %s: the answer's envelope has no Body", MethodSOAP, b.spec.URL)
	}
	if fault := xmlchild.First(soapBody, "Fault"); fault != nil {
		code := "(no faultcode)"
		if c := xmlchild.First(fault, "faultcode"); c != nil {
			code = strings.TrimSpace(c.Text())
		}
		return nil, fmt.Errorf("%s %s: SOAP fault %s", MethodSOAP, b.spec.URL, code)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %s without a SOAP fault", MethodSOAP, b.spec.URL, resp.Status)
	}
	return b.soapRecords(soapBody)
}

// soapRecords maps the elements at the records path below body. A missing parent of the record
// elements is an error (the answer is not of the configured shape); no record elements is no data.
func (b *Backend) soapRecords(body *etree.Element) ([]siobroker.Record, error) {
	at := body
	for i, step := range b.path[:len(b.path)-1] {
		if at = xmlchild.First(at, step); at == nil {
			return nil, fmt.Errorf("records_path %s: the answer has no %s", b.spec.RecordsPath, strings.Join(b.path[:i+1], "/"))
		}
	}
	var records []siobroker.Record
	for _, el := range xmlchild.All(at, b.path[len(b.path)-1]) {
		r := siobroker.Record{Type: b.spec.RecordType}
		for _, f := range b.fields {
			v := strings.TrimSpace(soapValue(el, f.key))
			if strings.HasSuffix(f.name, "_date") {
				v = dateOnly(v)
			}
			if v != "" {
				r.Fields = append(r.Fields, siobroker.Field{Name: f.name, Value: v})
			}
		}
		if len(r.Fields) > 0 {
			records = append(records, r)
		}
	}
	return records, nil
}

// soapValue is the text of the element at path below el, or the attribute its last step names;
// "" when there is none.
func soapValue(el *etree.Element, path []string) string {
	for i, step := range path {
		if name, ok := strings.CutPrefix(step, "@"); ok && i == len(path)-1 {
			for _, a := range el.Attr {
				if a.Key == name && a.Space != "xmlns" {
					return a.Value
				}
			}
			return ""
		}
		if el = xmlchild.First(el, step); el == nil {
			return ""
		}
	}
	return el.Text()
}
