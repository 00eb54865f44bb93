// Package adapterconfig reads an adapter process's configuration file: its name, its transport,
// for each service it answers the backend that answers it (postgres, http or demo), and for each
// case registry (§5) the source that answers its checks (postgres or http; demo registries are
// named under case_registries). Unknown keys are errors naming their line, so a typo never
// silently falls back to a default. Build turns a validated Config into the backends and
// registries; this package is the one place that knows every kind.
//
// Environment overrides (LoadEnv; siobroker adapter applies them): an adapter process must find
// the queues its broker declared, so the two values that say where they are come from the
// broker's own environment variables when these are set, over the file, as the broker reads them
// over configs/broker.yaml:
//
//	SIOBROKER_AMQP_URL     transport.amqp_url  (the broker's amqp.url)
//	SIOBROKER_AMQP_PREFIX  transport.prefix    (the broker's amqp.prefix)
//
// An empty variable does not override, as for the broker. The other transport keys (prefetch,
// concurrency, reconnect_max) are this process's own tuning, not the broker's, and are read from
// the file only. Load and Parse read the file alone (config check checks files as written).
package adapterconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"
	"go.yaml.in/yaml/v3"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/adapters/httpsource"
	"github.com/sio-pso/siobroker/adapters/postgres"
	"github.com/sio-pso/siobroker/internal/tracing"
)

// DefaultTracingServiceName is tracing.service_name when a file does not set it.
const DefaultTracingServiceName = "siobroker-adapter"

// The backend kinds a service may name.
const (
	KindPostgres = "postgres"
	KindHTTP     = "http"
	KindDemo     = "demo"
)

// Config is the configuration of one adapter process.
type Config struct {
	Name      string          `yaml:"name"`
	Transport Transport       `yaml:"transport"`
	Retry     Retry           `yaml:"retry"`
	Services  map[int]Service `yaml:"services"`
	Demo      Demo            `yaml:"demo"`
	// CaseRegistries are the demo case registries (§5) this process answers: from the demo
	// cases of a development PKI's demo.json.
	CaseRegistries CaseRegistries `yaml:"case_registries"`
	// Registries are the case registries (§5) this process answers from a real source, by name
	// (the queue sio.registry.NAME, the name cases.registries gives): each from a postgres query
	// or an http endpoint, as a service is. A name may not also be a demo one.
	Registries map[string]Registry `yaml:"registries"`
	// RoutesFile, when set, is the broker's routing table (configs/routes.yaml): the adapter then
	// consumes each service from the queue its route names (shared queues included), and refuses
	// to start when a route gives the service to another adapter or another backend kind. Empty:
	// each service's own queue, sio.service.NNN.
	RoutesFile string `yaml:"routes_file"`
	// Ledger, when its DSN is set, is the PostgreSQL database every adapter process serving the
	// same services shares, so that a request copied to another process (a lost acknowledgement,
	// a broker that crashed and asks again) is not asked of its source again there, but answered
	// from the answer the ledger kept (postgres.Ledger). Without it a redelivered copy is
	// recognised only by the process that answered it.
	Ledger Ledger `yaml:"ledger"`
	// Tracing is the process's OpenTelemetry, as the broker's tracing section: the consumer span
	// of every message continues the broker's trace from the message's metadata, and the calls to
	// HTTP sources carry it on (traceparent). Exported over OTLP/HTTP when otlp_endpoint is set;
	// service_name defaults to siobroker-adapter, sample_ratio (of the messages that come without
	// a trace) to 1. The broker's sampling decision is followed.
	Tracing tracing.Config `yaml:"tracing"`
}

// Ledger is where the adapter processes record the requests they took and answered.
type Ledger struct {
	DSN string `yaml:"dsn"`
	// AnswerRetention is how long the ledger keeps an answer it recorded, to answer a copy of its
	// request again; then the answer (a person's data) is forgotten, and a later copy goes to the
	// dead-letter queue. Default siobroker.DefaultAnswerRetention (24h); 1m to 30 days.
	AnswerRetention time.Duration `yaml:"answer_retention"`
}

// CaseRegistries names the registries served and where their demo cases come from.
type CaseRegistries struct {
	Names   []string `yaml:"names"`    // e.g. [erdr, courts, aisoip]: the queues sio.registry.NAME
	DemoPKI string   `yaml:"demo_pki"` // the development PKI directory whose demo.json lists the cases
}

// Registry is the source of one case registry (§5): it finds a case by the check's values and
// gives its status, the people in its proceedings with their part, and its qualification. Which
// keys apply depends on Backend: postgres takes dsn, query, params, fields and timeout (the query
// returns a row per participant, see postgres.RegistrySpec); http takes url, method (GET, POST or
// SOAP), timeout, fields, tls and headers, and with SOAP soap_body, soap_action and case_path (see
// httpsource.RegistrySpec). fields maps the answer's fields
// (status, articles, iin, part, and for http participants) to the columns or JSON paths they are
// read from, each defaulting to its own name.
type Registry struct {
	Backend string            `yaml:"backend"`
	DSN     string            `yaml:"dsn"`
	Query   string            `yaml:"query"`
	Params  []string          `yaml:"params"`
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Fields  map[string]string `yaml:"fields"`
	Timeout time.Duration     `yaml:"timeout"`
	TLS     *TLS              `yaml:"tls"`
	Headers map[string]string `yaml:"headers"` // as a service's: "${env:NAME}" is read from the environment
	// SOAPBody, SOAPAction and CasePath are an http registry's of method SOAP: see
	// httpsource.RegistrySpec.
	SOAPBody   string `yaml:"soap_body"`
	SOAPAction string `yaml:"soap_action"`
	CasePath   string `yaml:"case_path"`
}

// RegistryNames returns the names of every case registry the process answers, demo and real,
// sorted.
func (c *Config) RegistryNames() []string {
	names := slices.Concat(c.CaseRegistries.Names, slices.Collect(maps.Keys(c.Registries)))
	slices.Sort(names)
	return slices.Compact(names)
}

// Transport is the adapter's connection to the broker. SIOBROKER_AMQP_URL and
// SIOBROKER_AMQP_PREFIX, when set, override AMQPURL and Prefix (LoadEnv), as they override the
// broker's amqp.url and amqp.prefix.
type Transport struct {
	AMQPURL     string `yaml:"amqp_url"`
	Prefetch    int    `yaml:"prefetch"`    // AMQP QoS prefetch per consumer; default 1 (see routing/amqp Config.Prefetch)
	Concurrency int    `yaml:"concurrency"` // handlers per service
	// Prefix goes in front of every queue name, as the broker's amqp.prefix.
	Prefix string `yaml:"prefix"`
	// ReconnectMax bounds the back-off between attempts to reconnect to RabbitMQ (default 30s),
	// as the broker's amqp.reconnect_max.
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// MessageKeyFile is this adapter's key (a private file, 0600; `siobroker transport-key
	// derive --adapter NAME` writes it from the broker's master key): every service message must
	// carry the broker's MAC made with it, or it is dead-lettered unasked, and every answer is
	// authenticated with it. An adapter process does not run without it.
	MessageKeyFile string `yaml:"message_key_file"`
	// PreviousMessageKeyFile is the adapter's key before a rotation, still accepted on service
	// messages until PreviousMessageKeyUntil (RFC 3339, required with it).
	PreviousMessageKeyFile  string `yaml:"previous_message_key_file"`
	PreviousMessageKeyUntil string `yaml:"previous_message_key_until"`
}

// PreviousKeyUntil is transport.previous_message_key_until; zero when it is not set.
func (t Transport) PreviousKeyUntil() (time.Time, error) {
	if t.PreviousMessageKeyUntil == "" {
		return time.Time{}, nil
	}
	u, err := time.Parse(time.RFC3339, t.PreviousMessageKeyUntil)
	if err != nil {
		return time.Time{}, fmt.Errorf("transport.previous_message_key_until: %q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", t.PreviousMessageKeyUntil)
	}
	return u, nil
}

// Retry bounds how a source that fails transiently (a refused connection, a 502/503/504/429) is
// asked again: Attempts in all, the first pause Backoff, doubled each time, within the broker's
// deadline. When every attempt failed, the broker is answered ADAPTER_ERROR and the request goes
// to the dead-letter queue with the reason (siobroker dlq list, dlq replay).
type Retry struct {
	Attempts int           `yaml:"attempts"` // default 4
	Backoff  time.Duration `yaml:"backoff"`  // default 100ms
}

// Effective is r with its defaults for the zero values.
func (r Retry) Effective() (attempts int, backoff time.Duration) {
	attempts, backoff = r.Attempts, r.Backoff
	if attempts == 0 {
		attempts = 4
	}
	if backoff == 0 {
		backoff = 100 * time.Millisecond
	}
	return attempts, backoff
}

// Service is the backend of one service. Which keys apply depends on Backend: postgres takes dsn,
// query, params, record_type, fields and timeout; http takes url, method, timeout, record_type,
// records_path, fields and tls, and with method SOAP soap_body and soap_action; demo takes none
// (the demo section sizes its world).
type Service struct {
	Backend     string            `yaml:"backend"`
	DSN         string            `yaml:"dsn"`
	Query       string            `yaml:"query"`
	Params      []string          `yaml:"params"`
	URL         string            `yaml:"url"`
	Method      string            `yaml:"method"`
	RecordsPath string            `yaml:"records_path"`
	RecordType  string            `yaml:"record_type"`
	Fields      map[string]string `yaml:"fields"`
	Timeout     time.Duration     `yaml:"timeout"`
	SOAPBody    string            `yaml:"soap_body"`
	SOAPAction  string            `yaml:"soap_action"`
	TLS         *TLS              `yaml:"tls"`
	// Headers are sent with every call of an http backend (an API key, Accept-Language). A value
	// "${env:NAME}" is read from the environment variable NAME when the file is loaded, so that a
	// secret stays out of the file.
	Headers map[string]string `yaml:"headers"`
}

// TLS is an http backend's HTTPS settings: the roots of the source's certificate, and this
// adapter's client certificate (httpsource.TLSFiles).
type TLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Demo sizes the generated world the demo backends answer from.
type Demo struct {
	Seed          int64 `yaml:"seed"`
	People        int   `yaml:"people"`
	Organisations int   `yaml:"organisations"`
}

// Defaults are filled in for keys a file leaves out.
func (c *Config) setDefaults() {
	if c.Transport.Prefetch == 0 {
		c.Transport.Prefetch = 1 // see routing/amqp Config.Prefetch: more is counted toward the delivery limit on a lost channel
	}
	if c.Transport.Concurrency == 0 {
		c.Transport.Concurrency = 4
	}
	c.Retry.Attempts, c.Retry.Backoff = c.Retry.Effective()
	if c.Demo == (Demo{}) {
		c.Demo = Demo{Seed: 1, People: 200, Organisations: 50}
	}
}

// Load reads, defaults and validates the file at path, without environment overrides.
func Load(path string) (*Config, error) {
	cfg, _, err := LoadEnv(path, nil)
	return cfg, err
}

// Override is an environment variable that replaced a key of the file.
type Override struct {
	Env string // SIOBROKER_AMQP_PREFIX
	Key string // transport.prefix
}

// envOverrides are the broker's environment variables an adapter process honours, and the keys
// they replace; see the package comment.
var envOverrides = []struct {
	Override
	set func(*Config, string)
}{
	{Override{"SIOBROKER_AMQP_URL", "transport.amqp_url"}, func(c *Config, v string) { c.Transport.AMQPURL = v }},
	{Override{"SIOBROKER_AMQP_PREFIX", "transport.prefix"}, func(c *Config, v string) { c.Transport.Prefix = v }},
}

// LoadEnv is Load with the environment overrides applied (lookup is os.LookupEnv, or nil for
// none) before the defaults and the validation, so that a value given only in the environment
// is enough. It returns the overrides that applied, for the process to say where its values
// came from.
func LoadEnv(path string, lookup func(string) (string, bool)) (*Config, []Override, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("adapter config: %w", err)
	}
	cfg, applied, err := parse(data, lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("adapter config %s: %w", path, err)
	}
	return cfg, applied, nil
}

// Parse decodes, defaults and validates one YAML document, without environment overrides.
func Parse(data []byte) (*Config, error) {
	cfg, _, err := parse(data, nil)
	return cfg, err
}

func parse(data []byte, lookup func(string) (string, bool)) (*Config, []Override, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// Set before decoding, as a sample_ratio of 0 (never) is not the same as none written.
	cfg := Config{Tracing: tracing.Config{ServiceName: DefaultTracingServiceName, SampleRatio: tracing.DefaultSampleRatio}}
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("the file is empty")
		}
		return nil, nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("the file must hold one YAML document")
	}
	var applied []Override
	for _, o := range envOverrides {
		if lookup == nil {
			break
		}
		if v, ok := lookup(o.Env); ok && v != "" {
			o.set(&cfg, v)
			applied = append(applied, o.Override)
		}
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		for _, o := range applied {
			err = fmt.Errorf("%w\n(%s is from the environment's %s)", err, o.Key, o.Env)
		}
		return nil, nil, err
	}
	return &cfg, applied, nil
}

var adapterName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Validate checks what decoding cannot: ranges, kinds, and the keys each kind needs and forbids.
func (c Config) Validate() error { return c.validate(false) }

// validate is Validate; haveWorld says the demo world is given, so the demo section is not used.
func (c Config) validate(haveWorld bool) error {
	var errs []error
	if !adapterName.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q must be 1 to 63 lower-case letters, digits, '-' or '_', starting with a letter", c.Name))
	}
	errs = append(errs, amqpURLProblems(c.Transport.AMQPURL)...)
	if c.Transport.Prefetch < 1 {
		errs = append(errs, fmt.Errorf("transport.prefetch: must be at least 1, got %d", c.Transport.Prefetch))
	}
	if c.Transport.ReconnectMax != 0 && (c.Transport.ReconnectMax < time.Second || c.Transport.ReconnectMax > 10*time.Minute) {
		errs = append(errs, fmt.Errorf("transport.reconnect_max: %s; use 1s to 10m, or leave it out for 30s", c.Transport.ReconnectMax))
	}
	if c.Transport.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("transport.concurrency: must be at least 1, got %d", c.Transport.Concurrency))
	}
	until, err := c.Transport.PreviousKeyUntil()
	switch {
	case err != nil:
		errs = append(errs, err)
	case c.Transport.PreviousMessageKeyFile != "" && until.IsZero():
		errs = append(errs, errors.New("transport.previous_message_key_until: required with transport.previous_message_key_file, e.g. 2027-01-31T00:00:00Z"))
	case c.Transport.PreviousMessageKeyFile == "" && !until.IsZero():
		errs = append(errs, errors.New("transport.previous_message_key_until: set without transport.previous_message_key_file"))
	}
	if c.Retry.Attempts < 0 || c.Retry.Attempts > 20 {
		errs = append(errs, fmt.Errorf("retry.attempts: must be 1 to 20, got %d", c.Retry.Attempts))
	}
	if c.Retry.Backoff < 0 || c.Retry.Backoff > time.Minute {
		errs = append(errs, fmt.Errorf("retry.backoff: must be 0 to 1m, got %s", c.Retry.Backoff))
	}
	if len(c.Services) == 0 && len(c.CaseRegistries.Names) == 0 && len(c.Registries) == 0 {
		errs = append(errs, errors.New("services: an adapter must answer at least one service or case registry"))
	}
	if c.Ledger.DSN != "" {
		if _, err := pgxpool.ParseConfig(c.Ledger.DSN); err != nil {
			errs = append(errs, errors.New("ledger.dsn: not a PostgreSQL connection string")) // the parser's text may quote the password
		}
	}
	if r := c.Ledger.AnswerRetention; r != 0 && (r < time.Minute || r > 30*24*time.Hour) {
		errs = append(errs, fmt.Errorf("ledger.answer_retention: %s; use 1m to 720h, or leave it out for 24h", r))
	}
	if len(c.CaseRegistries.Names) > 0 && c.CaseRegistries.DemoPKI == "" {
		errs = append(errs, errors.New("case_registries.demo_pki: required with case_registries.names"))
	}
	errs = append(errs, c.validateRegistries()...)
	errs = append(errs, c.Tracing.Problems("tracing")...)
	usesDemo := false
	for _, no := range sortedKeys(c.Services) {
		s := c.Services[no]
		if no < siobroker.FirstService || no > siobroker.LastService {
			errs = append(errs, fmt.Errorf("services.%d: no such service in Appendix 2 (%d..%d)", no, siobroker.FirstService, siobroker.LastService))
			continue
		}
		var err error
		switch s.Backend {
		case KindPostgres:
			err = errors.Join(s.only(KindPostgres, "dsn", "query", "params", "record_type", "fields", "timeout"), s.checkDSN(), s.postgresSpec(no).Validate())
		case KindHTTP:
			_, herr := s.headers()
			err = errors.Join(s.only(KindHTTP, "url", "method", "timeout", "record_type", "records_path", "fields", "soap_body", "soap_action", "tls", "headers"),
				s.httpSpec(no).Validate(), s.checkTLS(), herr)
		case KindDemo:
			usesDemo = true
			err = s.only(KindDemo)
		default:
			err = fmt.Errorf("backend: %q; use %s, %s or %s", s.Backend, KindPostgres, KindHTTP, KindDemo)
		}
		if s.Timeout != 0 && s.Timeout < time.Millisecond {
			err = errors.Join(err, fmt.Errorf("timeout: %s is less than 1ms; write a unit, as in 5s", s.Timeout))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("services.%d: %w", no, err))
		}
	}
	if usesDemo && !haveWorld && (c.Demo.People < 1 || c.Demo.Organisations < 1) {
		errs = append(errs, fmt.Errorf("demo: people and organisations must be at least 1, got %d and %d", c.Demo.People, c.Demo.Organisations))
	}
	return errors.Join(errs...)
}

// registryName is a case registry's name, as access/cases takes it: it is in a queue's name.
var registryName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// validateRegistries checks the registries section: names, kinds, and the keys each kind needs
// and forbids. Each error names its registry's key.
func (c Config) validateRegistries() []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Registries)) {
		r := c.Registries[name]
		var err error
		switch r.Backend {
		case KindPostgres:
			err = errors.Join(r.only(KindPostgres, "dsn", "query", "params", "fields", "timeout"),
				Service{DSN: r.DSN}.checkDSN(), r.postgresSpec(name).Validate())
		case KindHTTP:
			_, herr := r.service().headers()
			err = errors.Join(r.only(KindHTTP, "url", "method", "fields", "timeout", "tls", "headers", "soap_body", "soap_action", "case_path"),
				r.httpSpec(name).Validate(), r.service().checkTLS(), herr)
		default:
			err = fmt.Errorf("backend: %q; a case registry uses %s or %s (the demo registries are case_registries.names)", r.Backend, KindPostgres, KindHTTP)
		}
		if !registryName.MatchString(name) {
			err = errors.Join(errors.New("the name must be 1 to 32 of a-z, 0-9, '_' or '-', starting with a letter, as cases.registries names it"), err)
		}
		if slices.Contains(c.CaseRegistries.Names, name) {
			err = errors.Join(errors.New("also in case_registries.names: one process answers a registry from one source; remove one"), err)
		}
		if r.Timeout != 0 && r.Timeout < time.Millisecond {
			err = errors.Join(err, fmt.Errorf("timeout: %s is less than 1ms; write a unit, as in 5s", r.Timeout))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("registries.%s: %w", name, err))
		}
	}
	return errs
}

// only reports the keys set that the kind does not take.
func (r Registry) only(kind string, allowed ...string) error {
	set := map[string]bool{"dsn": r.DSN != "", "query": r.Query != "", "params": r.Params != nil, "url": r.URL != "",
		"method": r.Method != "", "fields": r.Fields != nil, "timeout": r.Timeout != 0, "tls": r.TLS != nil, "headers": r.Headers != nil,
		"soap_body": r.SOAPBody != "", "soap_action": r.SOAPAction != "", "case_path": r.CasePath != ""}
	var errs []error
	for _, key := range []string{"dsn", "query", "params", "url", "method", "fields", "timeout", "tls", "headers", "soap_body", "soap_action", "case_path"} {
		if set[key] && !slices.Contains(allowed, key) {
			errs = append(errs, fmt.Errorf("%s: not a key of a %s backend", key, kind))
		}
	}
	return errors.Join(errs...)
}

// service is r's HTTP access as a service's, for the checks and builders the two share.
func (r Registry) service() Service { return Service{URL: r.URL, TLS: r.TLS, Headers: r.Headers} }

func (r Registry) postgresSpec(name string) postgres.RegistrySpec {
	return postgres.RegistrySpec{Registry: name, Query: r.Query, Params: r.Params, Columns: r.Fields, Timeout: r.Timeout}
}

func (r Registry) httpSpec(name string) httpsource.RegistrySpec {
	return httpsource.RegistrySpec{Registry: name, URL: r.URL, Method: r.Method, Timeout: r.Timeout, Fields: r.Fields,
		SOAPBody: r.SOAPBody, SOAPAction: r.SOAPAction, CasePath: r.CasePath}
}

// only reports the keys set that the kind does not take.
func (s Service) only(kind string, allowed ...string) error {
	set := map[string]bool{
		"dsn": s.DSN != "", "query": s.Query != "", "params": s.Params != nil, "url": s.URL != "",
		"method": s.Method != "", "records_path": s.RecordsPath != "", "record_type": s.RecordType != "",
		"fields": s.Fields != nil, "timeout": s.Timeout != 0, "soap_body": s.SOAPBody != "", "soap_action": s.SOAPAction != "",
		"tls": s.TLS != nil, "headers": s.Headers != nil,
	}
	var errs []error
	for _, key := range []string{"dsn", "query", "params", "url", "method", "records_path", "record_type", "fields", "timeout", "soap_body", "soap_action", "tls", "headers"} {
		if set[key] && !slices.Contains(allowed, key) {
			errs = append(errs, fmt.Errorf("%s: not a key of a %s backend", key, kind))
		}
	}
	return errors.Join(errs...)
}

func (s Service) checkDSN() error {
	if s.DSN == "" {
		return errors.New("dsn: a postgres backend needs one")
	}
	if _, err := pgxpool.ParseConfig(s.DSN); err != nil {
		return errors.New("dsn: not a PostgreSQL connection string") // the parser's text may quote the password
	}
	return nil
}

func (s Service) postgresSpec(no int) postgres.Spec {
	return postgres.Spec{Service: no, Query: s.Query, Params: s.Params, RecordType: s.RecordType, Fields: s.Fields, Timeout: s.Timeout}
}

// checkTLS loads the tls section's files, which must go with an https URL.
func (s Service) checkTLS() error {
	if s.TLS == nil {
		return nil
	}
	if u, err := url.Parse(s.URL); err == nil && u.Scheme != "https" {
		return errors.New("tls: only for an https url")
	}
	_, err := s.tlsFiles().Client()
	return err
}

// headerName is an HTTP header name (an RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// envValue is a header value read from the environment: ${env:NAME}.
var envValue = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)

// headers returns the headers with their ${env:NAME} values read. An unset variable, a name that
// is not a header's, or a value with a line break is an error; no value is quoted in it, since
// it may be a secret.
func (s Service) headers() (http.Header, error) {
	if len(s.Headers) == 0 {
		return nil, nil
	}
	h := http.Header{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		value := s.Headers[name]
		if m := envValue.FindStringSubmatch(value); m != nil {
			v, ok := os.LookupEnv(m[1])
			if !ok || v == "" {
				errs = append(errs, fmt.Errorf("headers.%s: the environment variable %s is not set", name, m[1]))
				continue
			}
			value = v
		}
		switch {
		case !headerName.MatchString(name):
			errs = append(errs, fmt.Errorf("headers: %q is not a header name", name))
		case strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			errs = append(errs, fmt.Errorf("headers.%s: the value holds a control character", name))
		default:
			h.Set(name, value)
		}
	}
	return h, errors.Join(errs...)
}

// httpAccess returns what an http backend sends with every call, and the client it calls with:
// the headers with their ${env:NAME} values read, and the client of the tls section (nil without
// one: the package's own).
func (s Service) httpAccess() (http.Header, *http.Client, error) {
	h, err := s.headers()
	if err != nil || s.TLS == nil {
		return h, nil, err
	}
	c, err := s.tlsFiles().Client()
	return h, c, err
}

func (s Service) tlsFiles() httpsource.TLSFiles {
	return httpsource.TLSFiles{CAFile: s.TLS.CAFile, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile, ServerName: s.TLS.ServerName}
}

func (s Service) httpSpec(no int) httpsource.Spec {
	return httpsource.Spec{Service: no, URL: s.URL, Method: s.Method, Timeout: s.Timeout, RecordType: s.RecordType,
		RecordsPath: s.RecordsPath, Fields: s.Fields, SOAPBody: s.SOAPBody, SOAPAction: s.SOAPAction}
}

// redact hides a URL's password.
// amqpURLProblems checks transport.amqp_url as the broker checks its amqp.url
// (config.AMQPURLProblems; not imported, as an adapter does not depend on the broker's
// configuration): one amqp:// or amqps:// URI with a host, or one per RabbitMQ node separated by
// commas. The problems never repeat a password: net/url's parse errors quote the URL whole.
func amqpURLProblems(value string) []error {
	const key = "transport.amqp_url"
	var urls []string
	for u := range strings.SplitSeq(value, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return []error{fmt.Errorf("%s: required: amqp://user:password@host:5672/vhost, or one such URL per RabbitMQ node separated by commas", key)}
	}
	var errs []error
	for i, raw := range urls {
		which := key
		if len(urls) > 1 {
			which = fmt.Sprintf("%s (URL %d of %d)", key, i+1, len(urls))
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not an amqp:// or amqps:// URL", which, redact(raw)))
		}
	}
	return errs
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func sortedKeys(m map[int]Service) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Backends are the built backends and registries, and what they hold open.
type Backends struct {
	Backends map[int]adapters.Backend
	// Registries are the registries of the registries section (not the demo ones of
	// case_registries, which need a development PKI's manifest), by name.
	Registries map[string]adapters.CaseRegistry
	pools      []*pgxpool.Pool
}

// Close closes the PostgreSQL pools.
func (b *Backends) Close() {
	for _, p := range b.pools {
		p.Close()
	}
}

// Build builds the backend of every configured service. Demo backends answer from demoWorld, or,
// when it is nil, from a world generated as the demo section says. PostgreSQL pools (one per
// distinct DSN) connect lazily and live as long as the process; use Open to be able to close them.
func Build(cfg *Config, demoWorld *demo.Dataset) (map[int]adapters.Backend, error) {
	b, err := Open(cfg, demoWorld)
	if err != nil {
		return nil, err
	}
	return b.Backends, nil
}

// Open is Build with a Close for the pools it opened.
func Open(cfg *Config, demoWorld *demo.Dataset) (*Backends, error) {
	return OpenTraced(cfg, demoWorld, nil)
}

// OpenTraced is Open whose http backends and registries make their client spans with tp (nil:
// the global TracerProvider): the adapter process's, made from its tracing section.
func OpenTraced(cfg *Config, demoWorld *demo.Dataset, tp trace.TracerProvider) (*Backends, error) {
	if cfg == nil {
		return nil, errors.New("adapter config: nil config")
	}
	if err := cfg.validate(demoWorld != nil); err != nil {
		return nil, err
	}
	out := &Backends{Backends: make(map[int]adapters.Backend, len(cfg.Services)), Registries: map[string]adapters.CaseRegistry{}}
	pools := map[string]*pgxpool.Pool{}
	fail := func(err error) (*Backends, error) {
		out.Close()
		return nil, err
	}
	pool := func(dsn string) (*pgxpool.Pool, error) {
		if p, ok := pools[dsn]; ok {
			return p, nil
		}
		p, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			return nil, fmt.Errorf("open the pool: %w", err)
		}
		pools[dsn] = p
		out.pools = append(out.pools, p)
		return p, nil
	}
	for _, no := range sortedKeys(cfg.Services) {
		s := cfg.Services[no]
		var b adapters.Backend
		var err error
		switch s.Backend {
		case KindPostgres:
			var p *pgxpool.Pool
			if p, err = pool(s.DSN); err == nil {
				b, err = postgres.New(p, s.postgresSpec(no))
			}
		case KindHTTP:
			spec := s.httpSpec(no)
			spec.TracerProvider = tp
			if spec.Header, spec.Client, err = s.httpAccess(); err == nil {
				b, err = httpsource.New(spec)
			}
		case KindDemo:
			if demoWorld == nil {
				demoWorld = demo.Generate(cfg.Demo.Seed, cfg.Demo.People, cfg.Demo.Organisations)
			}
			b, err = demo.NewBackend(demoWorld, no)
		}
		if err != nil {
			return fail(fmt.Errorf("services.%d: %w", no, err))
		}
		out.Backends[no] = b
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Registries)) {
		r := cfg.Registries[name]
		var reg adapters.CaseRegistry
		var err error
		switch r.Backend {
		case KindPostgres:
			var p *pgxpool.Pool
			if p, err = pool(r.DSN); err == nil {
				reg, err = postgres.NewRegistry(p, r.postgresSpec(name))
			}
		case KindHTTP:
			spec := r.httpSpec(name)
			spec.TracerProvider = tp
			if spec.Header, spec.Client, err = r.service().httpAccess(); err == nil {
				reg, err = httpsource.NewRegistry(spec)
			}
		}
		if err != nil {
			return fail(fmt.Errorf("registries.%s: %w", name, err))
		}
		out.Registries[name] = reg
	}
	return out, nil
}
