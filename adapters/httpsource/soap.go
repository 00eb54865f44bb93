package httpsource

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/beevik/etree"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/xmlchild"
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
	errs := soapBodyProblems(s.SOAPBody, s.SOAPAction, adapters.Params, adapters.ParamNames())
	if s.RecordsPath == "" || slices.Contains(strings.Split(s.RecordsPath, "/"), "") || strings.Contains(s.RecordsPath, "@") {
		errs = append(errs, fmt.Errorf("records_path: %q must be the \"/\"-separated element path of the records below soap:Body", s.RecordsPath))
	}
	return append(errs, soapPathProblems(s.Fields)...)
}

// soapBodyProblems checks a SOAP body, one well-formed element whose placeholders all name values
// of params, and a SOAPAction.
func soapBodyProblems[R any](body, action string, params map[string]func(R) string, names []string) []error {
	var errs []error
	if strings.TrimSpace(body) == "" {
		errs = append(errs, errors.New("soap_body: method SOAP needs the element to send in the soap:Body"))
	} else {
		for _, m := range placeholder.FindAllStringSubmatch(body, -1) {
			if _, ok := params[m[1]]; !ok {
				errs = append(errs, fmt.Errorf("soap_body: ${%s} is not one of %s", m[1], strings.Join(names, ", ")))
			}
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromString(placeholder.ReplaceAllString(body, "0")); err != nil {
			errs = append(errs, fmt.Errorf("soap_body: not well-formed XML: %w", err))
		} else if n := len(doc.ChildElements()); n != 1 {
			errs = append(errs, fmt.Errorf("soap_body: must be one element, has %d", n))
		}
	}
	if strings.ContainsAny(action, "\"\r\n") {
		errs = append(errs, errors.New("soap_action: must not hold quotes or line breaks"))
	}
	return errs
}

// soapPathProblems checks the fields' paths: "/"-separated element paths, with at most a last
// @attribute.
func soapPathProblems(fields map[string]string) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		key := fields[name]
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

// soapBody is a SOAP body split at its placeholders: literal XML and the values of a request R
// (a service request, a case check) between.
type soapBody[R any] struct {
	literal []string         // len(values)+1 pieces
	values  []func(R) string // one per placeholder
}

// parseSOAPBody splits a validated body, its placeholders naming values of params.
func parseSOAPBody[R any](body string, params map[string]func(R) string) soapBody[R] {
	var sb soapBody[R]
	at := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(body, -1) {
		sb.literal = append(sb.literal, body[at:m[0]])
		sb.values = append(sb.values, params[body[m[2]:m[3]]])
		at = m[1]
	}
	sb.literal = append(sb.literal, body[at:])
	return sb
}

// envelope is the request's soap:Envelope, the request values XML-escaped into the body.
func (sb soapBody[R]) envelope(req R) []byte {
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
	body, err := soapAnswerBody(resp, b.spec.URL, b.spec.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	return b.soapRecords(body)
}

// soapAnswerBody reads a SOAP answer of at most limit bytes from the endpoint configured as url,
// and returns its soap:Body: of a 200 without a fault. A fault (with 500, as SOAP 1.1 has it, or
// 200) is an error naming its faultcode only; another status is a StatusError, transient where
// the source may be back shortly.
func soapAnswerBody(resp *http.Response, url string, limit int64) (*etree.Element, error) {
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusInternalServerError {
		return nil, statusError(resp, MethodSOAP, url)
	}
	body, err := readBody(resp, limit)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil || doc.Root() == nil {
		return nil, fmt.Errorf("%s %s: status %s, the answer is not XML", MethodSOAP, url, resp.Status)
	}
	env := doc.Root()
	if env.Tag != "Envelope" || env.NamespaceURI() != soapEnvelopeNS {
		return nil, fmt.Errorf("%s %s: status %s, the answer is not a SOAP 1.1 envelope", MethodSOAP, url, resp.Status)
	}
	soapBody := xmlchild.First(env, "Body")
	if soapBody == nil {
		return nil, fmt.Errorf("%s %s: the answer's envelope has no Body", MethodSOAP, url)
	}
	if fault := xmlchild.First(soapBody, "Fault"); fault != nil {
		code := "(no faultcode)"
		if c := xmlchild.First(fault, "faultcode"); c != nil {
			code = strings.TrimSpace(c.Text())
		}
		return nil, fmt.Errorf("%s %s: SOAP fault %s", MethodSOAP, url, code)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %s without a SOAP fault", MethodSOAP, url, resp.Status)
	}
	return soapBody, nil
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
