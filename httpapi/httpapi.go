// Package httpapi serves the broker over HTTP: the SOAP endpoint (POST), its WSDL and XSDs
// (GET ?wsdl, ?xsd=NAME) and the liveness check (/healthz); and the server around it: timeouts,
// TLS under the one policy of internal/tlspolicy, and HSTS on every HTTPS response. Every fault
// leaves through soap.WriteFault.
package httpapi

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/internal/tlspolicy"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// Pipeline handles one SOAP request.
type Pipeline interface {
	Handle(ctx context.Context, body io.Reader, contentType string) (*broker.Reply, broker.Request, error)
}

// Config configures the handler. Endpoint, PublicURL, Clock and Logger are required; a zero
// MaxBodyBytes takes soap.DefaultMaxBytes, a negative one is refused.
type Config struct {
	Endpoint string // the path pattern of the SOAP endpoint
	// PublicURL is the scheme, host and optional path prefix clients reach the broker at
	// (http.public_url): the served WSDLs give PublicURL+Endpoint as the service's address. It
	// never comes from the request: a Host header is the client's word, and a WSDL that
	// reflected it would send the next client that trusts a cached copy wherever the first said.
	PublicURL string
	// WSDL is the embedded service description served at ?wsdl (soap.WSDLSyncChannel when
	// empty); ?wsdl=NAME serves the one it imports, and the others the endpoint takes
	// (WSDLAlso), each with this endpoint's address.
	WSDL         string
	WSDLAlso     []string
	MaxBodyBytes int64
	Clock        siobroker.Clock
	Logger       *slog.Logger
	// Ready reports why the broker cannot take requests, or nil when it can. A request that
	// comes while it is not ready is refused with SIO-UNAVAILABLE.
	Ready func(ctx context.Context) error
	// Mount adds further handlers by path pattern (reports, metrics, readiness).
	Mount map[string]http.Handler
	// Observe, if set, is told how every POSTed request ended, for metrics.
	Observe func(outcome siobroker.Outcome, code siobroker.Code, elapsed time.Duration)
	// Limiter, if set, refuses the POSTed requests of a client address over its limits before
	// anything of them is read; the endpoints of one server share it.
	Limiter *ClientLimiter
	// Operations are the endpoint's operations beside SendMessage (its WSDL's
	// GetMaintenanceWindows): a POST whose Body holds one of their elements goes to its handler
	// instead of the pipeline. They are told apart by that element, not by SOAPAction, which
	// WS-I Basic Profile forbids a receiver to rely on.
	Operations []Operation
	// TracerProvider makes the server span of every POSTed request, continuing the caller's
	// trace when it sends a traceparent header; the broker's spans of the request are its
	// children. Nil: the global one (the process's).
	TracerProvider trace.TracerProvider
}

// Operation is an operation of the endpoint other than SendMessage. Handle reads the request
// (under MaxBodyBytes), and returns the reply's bytes or the error to answer as a SOAP fault.
type Operation struct {
	Element xml.Name // the element the request's Body holds
	Handle  func(ctx context.Context, body io.Reader, contentType string) ([]byte, error)
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = soap.DefaultMaxBytes
	}
}

// Validate reports what is wrong with c once its defaults are applied: every required field
// that is missing, a negative MaxBodyBytes, and a Mount without its handler.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("httpapi: Config.Endpoint is required"))
	}
	if c.PublicURL == "" {
		errs = append(errs, errors.New("httpapi: Config.PublicURL is required: the address the WSDL gives, never the request's Host"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("httpapi: Config.Clock is required"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("httpapi: Config.Logger is required"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("httpapi: Config.MaxBodyBytes must not be negative, got %d", c.MaxBodyBytes))
	}
	for _, pattern := range slices.Sorted(maps.Keys(c.Mount)) {
		if c.Mount[pattern] == nil {
			errs = append(errs, fmt.Errorf("httpapi: Config.Mount[%q] has no handler", pattern))
		}
	}
	for _, op := range c.Operations {
		if op.Element.Local == "" || op.Handle == nil {
			errs = append(errs, fmt.Errorf("httpapi: Config.Operations: %v needs its element and its handler", op.Element))
		}
	}
	return errors.Join(errs...)
}

// NewHandler returns the broker's HTTP handler. It applies the defaults of cfg and returns an
// error naming every field of cfg that is missing or invalid; pipeline is required.
func NewHandler(cfg Config, pipeline Pipeline) (http.Handler, error) {
	cfg.setDefaults()
	err := cfg.Validate()
	if pipeline == nil {
		err = errors.Join(err, errors.New("httpapi: NewHandler: pipeline is required"))
	}
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	s := &server{cfg: cfg, pipeline: pipeline, tracer: tracing.Tracer(cfg.TracerProvider)}
	for _, op := range cfg.Operations {
		s.opElements = append(s.opElements, op.Element)
	}
	mux.HandleFunc(cfg.Endpoint, s.endpoint)
	mux.Handle("GET /healthz", Healthz())
	for pattern, h := range cfg.Mount {
		mux.Handle(pattern, h)
	}
	return mux, nil
}

type server struct {
	cfg        Config
	pipeline   Pipeline
	tracer     trace.Tracer
	opElements []xml.Name // the Element of each of cfg.Operations
}

func (s *server) endpoint(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.describe(w, r)
	case http.MethodPost:
		s.soap(w, r)
	default:
		soap.WriteFault(w, siobroker.Errorf(siobroker.CodeMethod, "method %s is not allowed; POST a SOAP envelope", r.Method), s.cfg.Clock.Now())
	}
}

// describe serves the WSDL, with the address rewritten to the configured public one
// (Config.PublicURL), and the XSDs it imports.
func (s *server) describe(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Has("wsdl") || q.Has("WSDL"):
		name := cmp.Or(q.Get("wsdl"), q.Get("WSDL"), s.cfg.WSDL, soap.WSDLSyncChannel)
		b, ok := []byte(nil), s.servesWSDL(name)
		if ok {
			b, ok = soap.WSDLFile(name, strings.TrimSuffix(s.cfg.PublicURL, "/")+s.cfg.Endpoint)
		}
		if !ok {
			http.Error(w, "no such service description", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(b)
	case q.Get("xsd") != "":
		b, ok := soap.XSD(q.Get("xsd"))
		if !ok {
			http.Error(w, "no such schema", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write(b)
	default:
		soap.WriteFault(w, siobroker.Errorf(siobroker.CodeMethod, "GET serves only ?wsdl, ?wsdl=NAME and ?xsd=NAME; POST a SOAP envelope"), s.cfg.Clock.Now())
	}
}

// servesWSDL reports whether this endpoint describes itself with the WSDL file name: its own,
// what that imports, or another contract it takes.
func (s *server) servesWSDL(name string) bool {
	own := cmp.Or(s.cfg.WSDL, soap.WSDLSyncChannel)
	return name == own || slices.Contains(soap.WSDLImports(own), name) || slices.Contains(s.cfg.WSDLAlso, name)
}

func (s *server) soap(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var ended error
	// The span of the request, under the caller's when it sent one. It is ended with the
	// request's outcome (the deferred calls run last first: Observe's, then this).
	ctx, span := s.tracer.Start(tracing.ExtractHTTP(r.Context(), r.Header), r.Method+" "+r.URL.Path,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(tracing.KeyHTTPMethod.String(r.Method),
			tracing.KeyURLPath.String(r.URL.Path)))
	r = r.WithContext(ctx)
	defer func() { endRequestSpan(span, ended) }()
	if s.cfg.Observe != nil {
		defer func() {
			code := siobroker.Code("")
			if ended != nil {
				code = siobroker.ErrorCode(ended)
			}
			s.cfg.Observe(siobroker.OutcomeOf(ended), code, time.Since(start))
		}()
	}
	// First of all, before the body is read: a client over its limits costs no more than this.
	if err := s.cfg.Limiter.check(w, r); err != nil {
		ended = s.refuseUnread(w, r, err)
		return
	}
	ended = s.serveSOAP(w, r, start)
}

// refuseUnread answers a request refused before its body was read, has it journaled
// (ClientLimits.Refused) and returns the fault. It is logged at debug level only: a flood would
// make the log its sink, and the journal (bounded) and the metrics keep it.
func (s *server) refuseUnread(w http.ResponseWriter, r *http.Request, err error) error {
	ctx := broker.WithClient(r.Context(), r.RemoteAddr)
	if s.cfg.Limiter.refused != nil {
		s.cfg.Limiter.refused(ctx, err, r.ContentLength)
	}
	s.cfg.Logger.DebugContext(ctx, "request refused before it was read", "client", broker.ClientKey(r.RemoteAddr),
		"code", siobroker.ErrorCode(err))
	soap.WriteFault(w, err, s.cfg.Clock.Now())
	return err
}

// serveSOAP answers one POST and returns the fault it answered with, nil for a reply.
func (s *server) serveSOAP(w http.ResponseWriter, r *http.Request, start time.Time) error {
	log := s.cfg.Logger
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return s.fault(w, log, broker.Request{}, siobroker.Errorf(siobroker.CodeOversize,
			"request of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.cfg.MaxBodyBytes))
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	if len(s.cfg.Operations) > 0 {
		if err := soap.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
			return s.fault(w, log, broker.Request{}, err)
		}
		// Before readiness: the operations read the store only, and the schedule of maintenance
		// windows is wanted most when the broker cannot take requests.
		var el xml.Name
		el, body = soap.BodyElementAmong(body, s.opElements)
		for _, op := range s.cfg.Operations {
			if op.Element == el {
				return s.operation(w, r, op, body)
			}
		}
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			var public *siobroker.Error
			if !errors.As(err, &public) {
				// Only an error the readiness check chose to say is shown; anything else stays in the log.
				public = siobroker.Wrap(siobroker.CodeUnavailable, err, "the broker is not ready to take requests; retry later")
			}
			return s.fault(w, log, broker.Request{}, public)
		}
	}
	if err := soap.CheckMediaType(r.Header.Get("Content-Type")); err != nil {
		return s.fault(w, log, broker.Request{}, err)
	}
	// The client is the connection's peer, never a forwarded header: that is the client's word,
	// and the bounds on what unauthenticated requests may cost are kept by client.
	reply, req, err := s.pipeline.Handle(broker.WithClient(r.Context(), r.RemoteAddr), body, r.Header.Get("Content-Type"))
	// req.RequestID is the broker's id, req.MessageID the client's; reply's are named the
	// other way round (below).
	requestSpanIDs(r.Context(), req.RequestID, req.MessageID)
	if err != nil {
		return s.fault(w, log, req, err)
	}
	requestSpanIDs(r.Context(), reply.MessageID, reply.RequestID)
	// reply.RequestID is the client's messageId, reply.MessageID the broker's id of the request.
	ids := reqlog.Attrs(reply.RequestID, reply.MessageID)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(reply.Bytes); err != nil {
		log.Warn("reply not delivered", append(ids, "error", err)...)
		return nil
	}
	log.Info("request answered", append(ids, "signer_iin", reply.SignerIIN, "services", len(reply.Services),
		"duration_ms", time.Since(start).Milliseconds())...)
	return nil
}

// requestSpanIDs names the request's ids on its span, those that are known.
func requestSpanIDs(ctx context.Context, requestID, messageID string) {
	span := trace.SpanFromContext(ctx)
	if requestID != "" {
		span.SetAttributes(tracing.KeyRequestID.String(requestID))
	}
	if messageID != "" {
		span.SetAttributes(tracing.KeyMessageID.String(messageID))
	}
}

// endRequestSpan ends a request's span with its outcome: the error code of a refusal, and an
// error status only for the broker's own failures (a refusal is the broker working). The
// refusal's message stays in the fault and the journal: it may quote the query.
func endRequestSpan(span trace.Span, ended error) {
	span.SetAttributes(tracing.KeyOutcome.String(string(siobroker.OutcomeOf(ended))))
	if ended != nil {
		code := siobroker.ErrorCode(ended)
		span.SetAttributes(tracing.KeyCode.String(string(code)))
		if code == siobroker.CodeInternal || code == siobroker.CodeUnavailable {
			span.SetStatus(codes.Error, string(code))
		}
	}
	span.End()
}

// operation answers a request of one of Config.Operations, and returns the fault it answered
// with, nil for a reply. The operation logs its own outcome.
func (s *server) operation(w http.ResponseWriter, r *http.Request, op Operation, body io.Reader) error {
	reply, err := op.Handle(r.Context(), body, r.Header.Get("Content-Type"))
	if err != nil {
		soap.WriteFault(w, err, s.cfg.Clock.Now())
		return err
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(reply); err != nil {
		s.cfg.Logger.Warn("reply not delivered", "operation", op.Element.Local, "error", err)
	}
	return nil
}

// fault writes err as a SOAP fault, logs it and returns it.
func (s *server) fault(w http.ResponseWriter, log *slog.Logger, req broker.Request, err error) error {
	code := siobroker.ErrorCode(err)
	attrs := append(reqlog.Attrs(req.MessageID, req.RequestID), "code", code, "sender_id", req.SenderID, "signer_iin", req.SignerIIN)
	if code == siobroker.CodeInternal || code == siobroker.CodeUnavailable {
		log.Error("request failed", append(attrs, "error", err)...)
	} else {
		log.Info("request refused", append(attrs, "reason", loggableReason(err))...)
	}
	soap.WriteFaultFor(w, req.Operation, err, s.cfg.Clock.Now())
	return err
}

// loggableReason is the refusal's message, unless it is about the subject or the case of the
// query: those messages may quote the values sent (an IIN of the wrong length, a case number that
// does not match its pattern), and subjects' personal data never goes into logs. The client has
// the whole message in the fault, and the journal keeps it.
func loggableReason(err error) string {
	var e *siobroker.Error
	if !errors.As(err, &e) {
		return siobroker.ErrorMessage(err)
	}
	switch {
	case e.Code == siobroker.CodeSubject || e.Code == siobroker.CodeCaseInvalid || e.Code == siobroker.CodeCaseUnknown,
		strings.HasPrefix(e.Field, "query/subject"), strings.HasPrefix(e.Field, "query/case"),
		strings.HasPrefix(e.Field, "query/purpose"):
		if e.Field != "" {
			return "refused on " + e.Field + " (the message quotes the query: not logged)"
		}
		return "refused on the subject or case (the message quotes the query: not logged)"
	}
	return siobroker.ErrorMessage(err)
}

// Healthz is the liveness check, "ok": the process serves HTTP. It is on the SOAP listener, for
// load balancers, and on the operator's; whether the broker can take requests is readiness,
// /readyz, on the operator's listener only.
func Healthz() http.Handler { return http.HandlerFunc(healthz) }

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// ServerConfig holds the listener's limits and TLS.
type ServerConfig struct {
	Addr              string
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	TLS               *tls.Config // nil for plain HTTP
	// Limiter, if set, counts each client address's connections (ClientLimits.Connections): the
	// limiter of the server's SOAP endpoints.
	Limiter *ClientLimiter
}

// NewServer returns an http.Server with every timeout set, so that slow clients cannot hold it.
func NewServer(cfg ServerConfig, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         cfg.TLS,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext:       cfg.Limiter.connContext(),
		ConnState:         cfg.Limiter.connState(),
	}
}

// TLSConfig builds the server's TLS settings under tlspolicy: TLS 1.3, and TLS 1.2 with ECDHE
// and AEAD suites only. With clientAuth "require", only client certificates that chain to roots
// are accepted; "request" asks for one and verifies it if given.
func TLSConfig(certFile, keyFile, clientAuth string, roots []*x509.Certificate) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s: %w", certFile, err)
	}
	cfg := tlspolicy.Apply(&tls.Config{Certificates: []tls.Certificate{cert}})
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	switch clientAuth {
	case "", "none":
	case "request":
		cfg.ClientAuth, cfg.ClientCAs = tls.VerifyClientCertIfGiven, pool
	case "require":
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
	default:
		return nil, errors.New("tls client_auth must be none, request or require")
	}
	return cfg, nil
}

// MinHSTSMaxAge is the shortest Strict-Transport-Security max-age HSTS sets: one year, the
// floor browsers' preload lists ask for. A shorter one leaves a browser that has not come back
// within it open to a downgrade to plain HTTP again.
const MinHSTSMaxAge = 365 * 24 * time.Hour

// HSTS wraps h so that every response carries Strict-Transport-Security with maxAge (at least
// MinHSTSMaxAge; a shorter one is raised to it). It is for a server that speaks only HTTPS: a
// browser that once reached the dashboard over TLS then refuses to be sent to it over plain
// HTTP. The header is set before h runs, so faults, 404s and the WSDL carry it too. No
// includeSubDomains: the broker does not own its domain's other names.
func HSTS(maxAge time.Duration, h http.Handler) http.Handler {
	value := fmt.Sprintf("max-age=%d", int64(max(maxAge, MinHSTSMaxAge)/time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", value)
		h.ServeHTTP(w, r)
	})
}
