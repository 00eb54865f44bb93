package httpsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/internal/xmlchild"
	"github.com/sio-pso/siobroker/schemas"
)

// The fields of a case registry's answer read from its source's JSON (RegistrySpec.Fields).
const (
	FieldStatus       = "status"       // the case's status: a string
	FieldArticles     = "articles"     // its qualification: an array of strings, or one string with ',' or ';' between articles
	FieldParticipants = "participants" // the people in its proceedings: an array of objects, each with
	FieldIIN          = "iin"          // the person's IIN (in each participant)
	FieldPart         = "part"         // and their part (in each participant)
)

// RegistryFields are the fields a RegistrySpec's Fields may map.
var RegistryFields = []string{FieldStatus, FieldArticles, FieldParticipants, FieldIIN, FieldPart}

// RegistrySpec is one case registry's endpoint (§5) and how its answer is read. A GET sends the
// check's case as query parameters (basis, number, and those of instruction_no, requesting_body,
// covering_letter_no, year and court that the case has); a POST sends it as a JSON body,
// RegistryBody. Their answer is 200 with a JSON object for a case the source holds, and 404 (or
// 204) for one it does not; any other status is an error. A SOAP call (method SOAP) sends
// SOAPBody, and its answer's element at CasePath is the case, none being "no such case".
type RegistrySpec struct {
	Registry string        // its name, for errors
	URL      string        // http or https
	Method   string        // GET (default), POST or SOAP
	Timeout  time.Duration // 0: only the caller's ctx bounds the call
	// Fields maps an answer field (RegistryFields) to the path of its value: for GET and POST the
	// dot-separated path of status, articles and participants in the answer's object, and of iin
	// and part in each participant's; for SOAP the "/"-separated element path (a last @attribute
	// for a single value) below the case's element, and below each participant's, articles and
	// participants naming elements that repeat. A field left out is read from the key or element
	// of its own name. No articles is none (a registry of civil cases has none); a missing status
	// or participants is an error.
	Fields map[string]string
	// SOAPBody is, for SOAP, the element sent in the soap:Body: XML in which ${name} stands for
	// the check's value adapters.CaseParams names, written XML-escaped.
	SOAPBody string
	// SOAPAction is, for SOAP, the SOAPAction header ("" sends an empty one).
	SOAPAction string
	// CasePath is, for SOAP, the "/"-separated path of the case's element below the answer's
	// soap:Body ("GetCaseResponse/case"). A missing parent of it is an error (the answer is not of
	// the configured shape); a missing case element is "no such case".
	CasePath     string
	Header       http.Header  // sent with every request (an API key)
	Client       *http.Client // nil: a client of the package's own
	MaxBodyBytes int64        // 0: DefaultMaxBodyBytes
	// TracerProvider makes the client span of every call, as Spec's. Nil: the global one.
	TracerProvider trace.TracerProvider
}

// Validate checks the spec without calling the endpoint.
func (s RegistrySpec) Validate() error {
	var errs []error
	if s.Registry == "" {
		errs = append(errs, errors.New("registry: the name must not be empty"))
	}
	errs = append(errs, endpointProblems(s.URL, s.Timeout, s.MaxBodyBytes)...)
	soap := strings.EqualFold(s.Method, MethodSOAP)
	switch strings.ToUpper(s.Method) {
	case "", http.MethodGet, http.MethodPost, MethodSOAP:
	default:
		errs = append(errs, fmt.Errorf("method: %q; a case registry takes GET, POST or SOAP", s.Method))
	}
	for _, field := range slices.Sorted(maps.Keys(s.Fields)) {
		path := s.Fields[field]
		switch {
		case !slices.Contains(RegistryFields, field):
			errs = append(errs, fmt.Errorf("fields: %q is not one of %s", field, strings.Join(RegistryFields, ", ")))
		case !soap && (path == "" || slices.Contains(strings.Split(path, "."), "")):
			errs = append(errs, fmt.Errorf("fields.%s: %q is not a key or a dot-separated path", field, path))
		case soap && (field == FieldArticles || field == FieldParticipants) && strings.Contains(path, "@"):
			errs = append(errs, fmt.Errorf("fields.%s: %q must name elements, not an attribute", field, path))
		}
	}
	if soap {
		errs = append(errs, soapBodyProblems(s.SOAPBody, s.SOAPAction, adapters.CaseParams, adapters.CaseParamNames())...)
		errs = append(errs, soapPathProblems(s.Fields)...)
		if s.CasePath == "" || slices.Contains(strings.Split(s.CasePath, "/"), "") || strings.Contains(s.CasePath, "@") {
			errs = append(errs, fmt.Errorf("case_path: %q must be the \"/\"-separated element path of the case below soap:Body", s.CasePath))
		}
	} else if s.SOAPBody != "" || s.SOAPAction != "" || s.CasePath != "" {
		errs = append(errs, errors.New("soap_body, soap_action, case_path: only for method SOAP"))
	}
	return errors.Join(errs...)
}

// Registry answers one case registry's checks from an HTTP endpoint. It is safe for concurrent
// use.
type Registry struct {
	spec   RegistrySpec
	method string
	client *http.Client
	paths  map[string][]string // every field → its path
	soap   soapBody[schemas.CaseCheckRequest]
	clock  siobroker.Clock
	tracer trace.Tracer
}

var _ adapters.CaseRegistry = (*Registry)(nil)

// NewRegistry returns the registry for spec.
func NewRegistry(spec RegistrySpec) (*Registry, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("http registry %s: %w", spec.Registry, err)
	}
	r := &Registry{spec: spec, paths: map[string][]string{}, clock: siobroker.SystemClock{}, tracer: tracing.Tracer(spec.TracerProvider)}
	r.method, r.client, r.spec.MaxBodyBytes = endpointDefaults(spec.Method, spec.Client, spec.MaxBodyBytes)
	r.spec.Header = spec.Header.Clone()
	r.spec.Fields = maps.Clone(spec.Fields)
	sep := "."
	if r.method == MethodSOAP {
		sep = "/"
		r.soap = parseSOAPBody(spec.SOAPBody, adapters.CaseParams)
	}
	for _, field := range RegistryFields {
		path := field
		if p, ok := spec.Fields[field]; ok {
			path = p
		}
		r.paths[field] = strings.Split(path, sep)
	}
	return r, nil
}

// RegistryBody is what a POST sends: the check's basis and case.
type RegistryBody struct {
	Basis int              `json:"basis"`
	Case  RegistryBodyCase `json:"case"`
}

// RegistryBodyCase is the case of a POST: the fields its form has (§§21–27).
type RegistryBodyCase struct {
	Number           string `json:"number"`
	InstructionNo    string `json:"instructionNo,omitempty"`
	RequestingBody   string `json:"requestingBody,omitempty"`
	CoveringLetterNo string `json:"coveringLetterNo,omitempty"`
	Year             string `json:"year,omitempty"`
	Court            string `json:"court,omitempty"`
}

// Check calls the endpoint and answers from its JSON (adapters.CaseAnswer). 404 and 204 are
// Found false. Another status, an answer that is not JSON or not of the configured shape, or a
// failed call is an error, which wraps ctx's error when ctx or the spec's timeout ended the call,
// and is marked adapters.Transient where the source may be back shortly.
func (r *Registry) Check(ctx context.Context, req schemas.CaseCheckRequest) (schemas.CaseCheckResponse, error) {
	what := "http registry " + r.spec.Registry
	if err := ctx.Err(); err != nil {
		return schemas.CaseCheckResponse{}, fmt.Errorf("%s: %w", what, err)
	}
	if r.spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.spec.Timeout)
		defer cancel()
	}
	found, facts, err := r.call(ctx, req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return schemas.CaseCheckResponse{}, fmt.Errorf("%s: %w", what, err)
	}
	resp, err := adapters.CaseAnswer(req, found, facts)
	if err != nil {
		return schemas.CaseCheckResponse{}, fmt.Errorf("%s: %w", what, err)
	}
	resp.Registry, resp.AnsweredAt = r.spec.Registry, r.clock.Now()
	return resp, nil
}

func (r *Registry) call(ctx context.Context, req schemas.CaseCheckRequest) (bool, siobroker.CaseFacts, error) {
	hreq, err := r.request(ctx, req)
	if err != nil {
		return false, siobroker.CaseFacts{}, err
	}
	resp, err := do(ctx, r.tracer, r.client, hreq, r.method, r.spec.URL)
	if err != nil {
		return false, siobroker.CaseFacts{}, err
	}
	defer resp.Body.Close()
	if r.method == MethodSOAP {
		body, err := soapAnswerBody(resp, r.spec.URL, r.spec.MaxBodyBytes)
		if err != nil {
			return false, siobroker.CaseFacts{}, err
		}
		return r.soapFacts(body)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusNoContent:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // let the connection be reused
		return false, siobroker.CaseFacts{}, nil
	case resp.StatusCode != http.StatusOK:
		return false, siobroker.CaseFacts{}, statusError(resp, r.method, r.spec.URL)
	}
	body, err := readBody(resp, r.spec.MaxBodyBytes)
	if err != nil {
		return false, siobroker.CaseFacts{}, err
	}
	facts, err := r.facts(body)
	return err == nil, facts, err
}

func (r *Registry) request(ctx context.Context, req schemas.CaseCheckRequest) (*http.Request, error) {
	c := RegistryBodyCase{Number: req.Case.Number, InstructionNo: req.Case.InstructionNo, RequestingBody: req.Case.RequestingBody,
		CoveringLetterNo: req.Case.CoveringLetterNo, Year: req.Case.Year, Court: req.Case.Court}
	var hreq *http.Request
	var err error
	switch r.method {
	case MethodSOAP:
		if hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, r.spec.URL, bytes.NewReader(r.soap.envelope(req))); err == nil {
			hreq.Header.Set("Content-Type", "text/xml; charset=utf-8")
			hreq.Header.Set("SOAPAction", strconv.Quote(r.spec.SOAPAction))
		}
	case http.MethodPost:
		body, merr := json.Marshal(RegistryBody{Basis: int(req.Basis), Case: c})
		if merr != nil {
			return nil, merr
		}
		if hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, r.spec.URL, bytes.NewReader(body)); err == nil {
			hreq.Header.Set("Content-Type", "application/json")
		}
	default:
		u, perr := url.Parse(r.spec.URL)
		if perr != nil {
			return nil, perr
		}
		q := u.Query()
		q.Set("basis", strconv.Itoa(int(req.Basis)))
		for _, kv := range [][2]string{{"number", c.Number}, {"instruction_no", c.InstructionNo}, {"requesting_body", c.RequestingBody},
			{"covering_letter_no", c.CoveringLetterNo}, {"year", c.Year}, {"court", c.Court}} {
			if kv[1] != "" {
				q.Set(kv[0], kv[1])
			}
		}
		u.RawQuery = q.Encode()
		hreq, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return nil, err
	}
	addHeaders(hreq, r.spec.Header, r.method, req.RequestID)
	return hreq, nil
}

// facts reads the case's facts from a 200 answer.
func (r *Registry) facts(body []byte) (siobroker.CaseFacts, error) {
	var facts siobroker.CaseFacts
	doc, err := decodeJSON(body)
	if err != nil {
		return facts, err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return facts, errors.New("the answer is not a JSON object")
	}
	status, ok := lookup(obj, r.paths[FieldStatus]).(string)
	if !ok {
		return facts, fmt.Errorf("fields.status: the answer has no string at %s", strings.Join(r.paths[FieldStatus], "."))
	}
	facts.Status = status
	switch a := lookup(obj, r.paths[FieldArticles]).(type) {
	case nil:
	case string:
		facts.Articles = []string{a}
	case []any:
		for i, item := range a {
			s, ok := item.(string)
			if !ok {
				return facts, fmt.Errorf("fields.articles: item %d is not a string", i)
			}
			facts.Articles = append(facts.Articles, s)
		}
	default:
		return facts, errors.New("fields.articles: neither an array of strings nor a string")
	}
	people, ok := lookup(obj, r.paths[FieldParticipants]).([]any)
	if !ok {
		return facts, fmt.Errorf("fields.participants: the answer has no array at %s", strings.Join(r.paths[FieldParticipants], "."))
	}
	for i, item := range people {
		p, ok := item.(map[string]any)
		if !ok {
			return facts, fmt.Errorf("participant %d: not an object", i+1)
		}
		iin, okIIN := lookup(p, r.paths[FieldIIN]).(string)
		part, okPart := lookup(p, r.paths[FieldPart]).(string)
		if !okIIN || !okPart {
			return facts, fmt.Errorf("participant %d: no string at %s or %s", i+1, strings.Join(r.paths[FieldIIN], "."), strings.Join(r.paths[FieldPart], "."))
		}
		facts.Participants = append(facts.Participants, siobroker.Participant{IIN: iin, Part: part})
	}
	return facts, nil
}

// soapFacts reads the case's facts from the soap:Body of a SOAP answer: the element at the case
// path, none being "no such case".
func (r *Registry) soapFacts(body *etree.Element) (bool, siobroker.CaseFacts, error) {
	var facts siobroker.CaseFacts
	path := strings.Split(r.spec.CasePath, "/")
	at := body
	for i, step := range path[:len(path)-1] {
		if at = xmlchild.First(at, step); at == nil {
			return false, facts, fmt.Errorf("case_path %s: the answer has no %s", r.spec.CasePath, strings.Join(path[:i+1], "/"))
		}
	}
	c := xmlchild.First(at, path[len(path)-1])
	if c == nil {
		return false, facts, nil
	}
	if facts.Status = strings.TrimSpace(soapValue(c, r.paths[FieldStatus])); facts.Status == "" {
		return false, facts, fmt.Errorf("fields.status: the case has no value at %s", strings.Join(r.paths[FieldStatus], "/"))
	}
	for _, a := range soapElements(c, r.paths[FieldArticles]) {
		facts.Articles = append(facts.Articles, a.Text())
	}
	for i, p := range soapElements(c, r.paths[FieldParticipants]) {
		iin, part := strings.TrimSpace(soapValue(p, r.paths[FieldIIN])), strings.TrimSpace(soapValue(p, r.paths[FieldPart]))
		if iin == "" || part == "" {
			return false, facts, fmt.Errorf("participant %d: no value at %s or %s", i+1, strings.Join(r.paths[FieldIIN], "/"), strings.Join(r.paths[FieldPart], "/"))
		}
		facts.Participants = append(facts.Participants, siobroker.Participant{IIN: iin, Part: part})
	}
	return true, facts, nil
}

// soapElements are the elements at path below el, its last step naming elements that repeat;
// none when a step is missing.
func soapElements(el *etree.Element, path []string) []*etree.Element {
	for _, step := range path[:len(path)-1] {
		if el = xmlchild.First(el, step); el == nil {
			return nil
		}
	}
	return xmlchild.All(el, path[len(path)-1])
}
