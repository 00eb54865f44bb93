// Package httpsource is an adapters.Backend that asks the source system's own HTTP or SOAP
// endpoint: a GET with the subject as a query parameter (iin= or bin=), or a POST of a JSON body
// {"service":..,"subject":{..},"case":{..}}, whose JSON answer's array at RecordsPath becomes
// the records, each object's values mapped to fields by Fields; or a SOAP 1.1 call (soap.go),
// whose answer's elements at RecordsPath become the records. Registry (registry.go) is the
// adapters.CaseRegistry of the same kinds of endpoint, answering the case checks of §5.
package httpsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/schemas"
)

// DefaultMaxBodyBytes bounds an answer when Spec.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 8 << 20

// Spec is one service's endpoint and how its answer becomes records.
type Spec struct {
	Service    int
	URL        string        // http or https; GET adds iin= or bin= to its query
	Method     string        // GET (default), POST or SOAP
	Timeout    time.Duration // 0: only the caller's ctx bounds the call
	RecordType string        // snake_case type of every record
	// RecordsPath is, for GET and POST, the dot-separated path to the array of objects ("" when
	// the answer is the array); for SOAP, the "/"-separated path of the record elements below
	// the answer's soap:Body, by local name ("GetVehiclesResponse/vehicle").
	RecordsPath string
	// Fields maps a result field name (snake_case) to a key of each object, or a dot-separated
	// path into it ("owner.iin"); for SOAP, to the "/"-separated path of a child element of the
	// record element ("owner/iin"), or of an attribute ("@id", "owner/@iin").
	Fields map[string]string
	// SOAPBody is, for SOAP, the element sent in the request's soap:Body: XML in which ${name}
	// stands for the request value adapters.Params names, written XML-escaped.
	SOAPBody string
	// SOAPAction is, for SOAP, the SOAPAction header ("" sends an empty one).
	SOAPAction   string
	Header       http.Header  // sent with every request (an API key, Accept-Language)
	Client       *http.Client // nil: a client of the package's own, not http.DefaultClient
	MaxBodyBytes int64        // 0: DefaultMaxBodyBytes
	// TracerProvider makes the client span of every call, whose W3C trace context the call
	// carries in its traceparent header. Nil: the global one (the process's).
	TracerProvider trace.TracerProvider
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// Validate checks the spec without calling the endpoint.
func (s Spec) Validate() error {
	var errs []error
	if s.Service < siobroker.FirstService || s.Service > siobroker.LastService {
		errs = append(errs, fmt.Errorf("service %d: no such service in Appendix 2 (%d..%d)", s.Service, siobroker.FirstService, siobroker.LastService))
	}
	errs = append(errs, endpointProblems(s.URL, s.Timeout, s.MaxBodyBytes)...)
	soap := strings.EqualFold(s.Method, MethodSOAP)
	switch strings.ToUpper(s.Method) {
	case "", http.MethodGet, http.MethodPost, MethodSOAP:
	default:
		errs = append(errs, fmt.Errorf("method: %q; use GET, POST or SOAP", s.Method))
	}
	if !snakeCase.MatchString(s.RecordType) {
		errs = append(errs, fmt.Errorf("record_type: %q must be snake_case", s.RecordType))
	}
	if len(s.Fields) == 0 {
		errs = append(errs, errors.New("fields: at least one field → key mapping is needed"))
	}
	for name := range s.Fields {
		if !snakeCase.MatchString(name) {
			errs = append(errs, fmt.Errorf("fields: %q must be snake_case", name))
		}
	}
	if soap {
		errs = append(errs, s.validateSOAP()...)
	} else {
		if s.SOAPBody != "" || s.SOAPAction != "" {
			errs = append(errs, errors.New("soap_body, soap_action: only for method SOAP"))
		}
		if s.RecordsPath != "" && slices.Contains(strings.Split(s.RecordsPath, "."), "") {
			errs = append(errs, fmt.Errorf("records_path: %q has an empty element", s.RecordsPath))
		}
		for name, key := range s.Fields {
			if key == "" || slices.Contains(strings.Split(key, "."), "") {
				errs = append(errs, fmt.Errorf("fields.%s: %q is not a key or a dot-separated path", name, key))
			}
		}
	}
	return errors.Join(errs...)
}

// endpointProblems checks what every endpoint has: an absolute http or https URL, and no
// negative timeout or body limit.
func endpointProblems(rawURL string, timeout time.Duration, maxBodyBytes int64) []error {
	var errs []error
	if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url: %q is not an absolute http or https URL", rawURL))
	}
	if timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: must not be negative, got %s", timeout))
	}
	if maxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: must not be negative, got %d", maxBodyBytes))
	}
	return errs
}

// endpointDefaults are an endpoint's method upper-cased (GET when empty), its client (one of the
// package's own when nil, not http.DefaultClient) and its body limit (DefaultMaxBodyBytes when 0).
func endpointDefaults(method string, client *http.Client, maxBodyBytes int64) (string, *http.Client, int64) {
	method = strings.ToUpper(method)
	if method == "" {
		method = http.MethodGet
	}
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport}
	}
	if maxBodyBytes == 0 {
		maxBodyBytes = DefaultMaxBodyBytes
	}
	return method, client, maxBodyBytes
}

// Backend answers one service from an HTTP endpoint. It is safe for concurrent use.
type Backend struct {
	spec   Spec
	tracer trace.Tracer
	method string
	client *http.Client
	fields []field // sorted by name, so that records are the same whatever the map order
	path   []string
	soap   soapBody[schemas.ServiceRequest] // for SOAP
}

type field struct {
	name string
	key  []string
}

// New returns the backend for spec.
func New(spec Spec) (*Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("http service %d: %w", spec.Service, err)
	}
	b := &Backend{spec: spec, tracer: tracing.Tracer(spec.TracerProvider)}
	b.method, b.client, b.spec.MaxBodyBytes = endpointDefaults(spec.Method, spec.Client, spec.MaxBodyBytes)
	b.spec.Header = spec.Header.Clone()
	sep := "."
	if b.method == MethodSOAP {
		sep = "/"
		b.soap = parseSOAPBody(spec.SOAPBody, adapters.Params)
	}
	if spec.RecordsPath != "" {
		b.path = strings.Split(spec.RecordsPath, sep)
	}
	for name, key := range spec.Fields {
		b.fields = append(b.fields, field{name: name, key: strings.Split(key, sep)})
	}
	slices.SortFunc(b.fields, func(x, y field) int { return strings.Compare(x.name, y.name) })
	return b, nil
}

// Body is what a POST sends.
type Body struct {
	Service int         `json:"service"`
	Subject BodySubject `json:"subject"`
	Case    BodyCase    `json:"case"`
}

// BodySubject is the subject of a POST: exactly one of IIN and BIN.
type BodySubject struct {
	IIN string `json:"iin,omitempty"`
	BIN string `json:"bin,omitempty"`
}

// BodyCase is the case a POST is made under.
type BodyCase struct {
	Basis   int    `json:"basis"`
	Number  string `json:"number,omitempty"`
	Article string `json:"article,omitempty"`
}

// Query calls the endpoint. 404, 204, an empty or null array are NO_DATA; another status, an
// answer that is not JSON or not of the configured shape, or a failed call is an error, which
// wraps ctx's error when ctx or the spec's timeout ended the call.
func (b *Backend) Query(ctx context.Context, req schemas.ServiceRequest) (siobroker.ServiceResult, error) {
	no := b.spec.Service
	if err := ctx.Err(); err != nil {
		return siobroker.ServiceResult{}, fmt.Errorf("http service %d: %w", no, err)
	}
	if req.Service != no {
		return siobroker.ServiceResult{}, fmt.Errorf("http service %d: request is for service %d", no, req.Service)
	}
	if (req.Subject.IIN == "") == (req.Subject.BIN == "") {
		return siobroker.ServiceResult{}, fmt.Errorf("http service %d: the subject needs exactly one of IIN and BIN", no)
	}
	if b.spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.spec.Timeout)
		defer cancel()
	}
	records, err := b.call(ctx, req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return siobroker.ServiceResult{}, fmt.Errorf("http service %d: %w", no, err)
	}
	result := siobroker.ServiceResult{Service: no, Status: siobroker.StatusOK, Reason: siobroker.ReasonNoData}
	if len(records) > 0 {
		result.Reason, result.Records = siobroker.ReasonOK, records
	}
	return result, nil
}

func (b *Backend) call(ctx context.Context, req schemas.ServiceRequest) ([]siobroker.Record, error) {
	hreq, err := b.request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp, err := do(ctx, b.tracer, b.client, hreq, b.method, b.spec.URL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if b.method == MethodSOAP {
		return b.soapAnswer(resp)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusNoContent:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // let the connection be reused
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, b.statusError(resp)
	}
	body, err := b.readBody(resp)
	if err != nil {
		return nil, err
	}
	return b.records(body)
}

// do sends hreq with client, in a client span of tracer whose trace context goes with the
// request (traceparent), so that a source that traces joins the broker's trace. The span names
// the method, the host and the path, never the query or the body: they hold the subject.
//
// A failed call's error names method and the configured url, not the request's: a *url.Error
// quotes the request's URL, whose query holds the subject's IIN or BIN, and the error is logged.
// A refused or reset connection before ctx ended is marked transient: the source may be back
// shortly.
func do(ctx context.Context, tracer trace.Tracer, client *http.Client, hreq *http.Request, method, configured string) (*http.Response, error) {
	ctx, span := tracer.Start(ctx, hreq.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		tracing.KeyHTTPMethod.String(hreq.Method), tracing.KeyServerAddress.String(hreq.URL.Hostname()),
		tracing.KeyURLPath.String(hreq.URL.Path)))
	defer span.End()
	hreq = hreq.WithContext(ctx)
	tracing.InjectHTTP(ctx, hreq.Header)
	resp, err := client.Do(hreq)
	if err == nil {
		span.SetAttributes(tracing.KeyHTTPStatus.Int(resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, resp.Status)
		}
		return resp, nil
	}
	// The error's class only: its text may quote the request's URL.
	span.SetStatus(codes.Error, "the call failed")
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = fmt.Errorf("%s %s: %w", method, configured, uerr.Err)
	}
	if ctx.Err() == nil {
		return nil, adapters.Transient(err)
	}
	return nil, err
}

// statusError is the error of an answer with an unexpected status, transient where the source is
// overloaded or restarting. The body is not quoted: a source's error text may repeat the subject
// it was asked about.
func (b *Backend) statusError(resp *http.Response) error {
	return statusError(resp, b.method, b.spec.URL)
}

func statusError(resp *http.Response, method, configured string) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // let the connection be reused
	err := &StatusError{Method: method, URL: configured, Status: resp.Status, Code: resp.StatusCode}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return adapters.Transient(err)
	}
	return err
}

// StatusError is an answer with an HTTP status the backend did not expect. Its text names the
// method, the configured URL and the status line; HTTPStatus gives the status, and only it, to a
// dead letter's reason (schemas.HTTPStatusError).
type StatusError struct {
	Method, URL, Status string
	Code                int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %s", e.Method, e.URL, e.Status)
}

// HTTPStatus is the answer's status code.
func (e *StatusError) HTTPStatus() int { return e.Code }

// readBody reads an answer of at most Spec.MaxBodyBytes.
func (b *Backend) readBody(resp *http.Response) ([]byte, error) {
	return readBody(resp, b.spec.MaxBodyBytes)
}

func readBody(resp *http.Response, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("the answer exceeds %d bytes", limit)
	}
	return body, nil
}

func (b *Backend) request(ctx context.Context, req schemas.ServiceRequest) (*http.Request, error) {
	var hreq *http.Request
	var err error
	switch b.method {
	case MethodSOAP:
		hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, b.spec.URL, bytes.NewReader(b.soap.envelope(req)))
		if err == nil {
			hreq.Header.Set("Content-Type", "text/xml; charset=utf-8")
			hreq.Header.Set("SOAPAction", strconv.Quote(b.spec.SOAPAction))
		}
	case http.MethodPost:
		body, merr := json.Marshal(Body{
			Service: req.Service,
			Subject: BodySubject{IIN: req.Subject.IIN, BIN: req.Subject.BIN},
			Case:    BodyCase{Basis: int(req.Basis), Number: req.Case.Number, Article: req.Article},
		})
		if merr != nil {
			return nil, merr
		}
		hreq, err = http.NewRequestWithContext(ctx, http.MethodPost, b.spec.URL, bytes.NewReader(body))
		if err == nil {
			hreq.Header.Set("Content-Type", "application/json")
		}
	default:
		u, perr := url.Parse(b.spec.URL)
		if perr != nil {
			return nil, perr
		}
		q := u.Query()
		if req.Subject.IIN != "" {
			q.Set("iin", req.Subject.IIN)
		} else {
			q.Set("bin", req.Subject.BIN)
		}
		u.RawQuery = q.Encode()
		hreq, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	}
	if err != nil {
		return nil, err
	}
	addHeaders(hreq, b.spec.Header, b.method, req.RequestID)
	return hreq, nil
}

// decodeJSON decodes one JSON value, numbers as written.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the answer is not JSON: data after the value")
	}
	return doc, nil
}

// addHeaders adds to hreq the configured headers, the Accept of method's answers, and the
// broker's request id, which lets the source's logs be matched with the broker's.
func addHeaders(hreq *http.Request, configured http.Header, method, requestID string) {
	for k, vs := range configured {
		for _, v := range vs {
			hreq.Header.Add(k, v)
		}
	}
	if method == MethodSOAP {
		hreq.Header.Set("Accept", "text/xml")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	if requestID != "" {
		hreq.Header.Set("X-Request-Id", requestID)
	}
}

// records decodes the answer and maps the array at the records path.
func (b *Backend) records(body []byte) ([]siobroker.Record, error) {
	at, err := decodeJSON(body)
	if err != nil {
		return nil, err
	}
	for i, key := range b.path {
		obj, ok := at.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("records_path %s: %s is not an object", b.spec.RecordsPath, strings.Join(b.path[:i], "."))
		}
		if at, ok = obj[key]; !ok {
			return nil, fmt.Errorf("records_path %s: the answer has no %q", b.spec.RecordsPath, strings.Join(b.path[:i+1], "."))
		}
	}
	if at == nil {
		return nil, nil
	}
	items, ok := at.([]any)
	if !ok {
		return nil, fmt.Errorf("records_path %q: not an array", b.spec.RecordsPath)
	}
	var records []siobroker.Record
	for i, item := range items {
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %d: not an object", i)
		}
		r := siobroker.Record{Type: b.spec.RecordType}
		for _, f := range b.fields {
			v, err := text(lookup(obj, f.key))
			if err != nil {
				return nil, fmt.Errorf("record %d, field %s: %w", i, f.name, err)
			}
			if strings.HasSuffix(f.name, "_date") {
				v = dateOnly(v)
			}
			if strings.TrimSpace(v) != "" {
				r.Fields = append(r.Fields, siobroker.Field{Name: f.name, Value: v})
			}
		}
		if len(r.Fields) > 0 {
			records = append(records, r)
		}
	}
	return records, nil
}

func lookup(obj map[string]any, key []string) any {
	var at any = obj
	for _, k := range key {
		m, ok := at.(map[string]any)
		if !ok {
			return nil
		}
		at = m[k]
	}
	return at
}

// text renders a JSON value: strings as they are, numbers as written, objects and arrays as
// compact JSON. null and a missing key are "".
func text(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		b, err := json.Marshal(v)
		return string(b), err
	}
}

// dateOnly turns an RFC 3339 timestamp in a *_date field into its date, as written in its own
// offset; anything else is left as it is.
func dateOnly(v string) string {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.Format(time.DateOnly)
	}
	return v
}
