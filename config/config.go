// Package config reads the broker's static configuration with viper: configs/broker.yaml, then
// environment overrides (SIOBROKER_<KEY>, with "." and "-" written as "_"). Unknown keys are an
// error, so a typo never silently falls back to a default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/internal/tracing"
	"github.com/spf13/viper"
)

// Broker is the static configuration of a broker process.
type Broker struct {
	Listen    string `mapstructure:"listen"`
	DataDir   string `mapstructure:"data_dir"`
	Endpoint  string `mapstructure:"endpoint"`
	Transport string `mapstructure:"transport"`
	Rights    string `mapstructure:"rights_file"`
	// Maintenance is the file of configured maintenance windows (configs/maintenance.yaml);
	// a missing file means none. Reloaded with the routes and rights.
	Maintenance string `mapstructure:"maintenance_file"`
	// MaintenanceMinNotice is the least time between a maintenance window's announcement and
	// its start (§36, 42: planned work is announced in advance). A window with less notice, or
	// one that has begun, is refused unless marked an emergency, which opens an incident.
	MaintenanceMinNotice time.Duration `mapstructure:"maintenance_min_notice"`
	HTTP                 HTTP          `mapstructure:"http"`
	Trust                Trust         `mapstructure:"trust"`
	Signing              Signing       `mapstructure:"signing"`
	Replay               Replay        `mapstructure:"replay"`
	Routing              Routing       `mapstructure:"routing"`
	Demo                 Demo          `mapstructure:"demo"`
	Log                  Log           `mapstructure:"log"`
	Cases                cases.Config  `mapstructure:"cases"`
	AMQP                 AMQP          `mapstructure:"amqp"`
	Store                Store         `mapstructure:"store"`
	Journal              Journal       `mapstructure:"journal"`
	Incidents            Incidents     `mapstructure:"incidents"`
	Reports              Reports       `mapstructure:"reports"`
	Notify               Notify        `mapstructure:"notify"`
	Users                Users         `mapstructure:"users"`
	HR                   HR            `mapstructure:"hr"`
	Operator             Operator      `mapstructure:"operator"`
	Debug                Debug         `mapstructure:"debug"`
	// Tracing is OpenTelemetry: a span per request and per service leg, exported over OTLP/HTTP
	// when tracing.otlp_endpoint is set; off by default. The W3C trace context is carried to the
	// adapters and on to their HTTP sources either way (package internal/tracing).
	Tracing tracing.Config `mapstructure:"tracing"`
	// Dev lets serve fall back to the development PKI in DATA/pki (created on first start) when
	// trust.roots or signing.cert_file is empty, and seed its demo users, one of them an
	// operator. It is set by `serve --dev` alone, never by a file or the environment: a broker
	// that trusts a CA whose key lies in its own data directory must be asked for by hand.
	Dev bool `mapstructure:"-"`
}

// HTTP holds the server's limits. Every timeout is set so that a slow client cannot hold a
// connection.
type HTTP struct {
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	MaxBodyBytes      int64         `mapstructure:"max_body_bytes"`
	MaxDepth          int           `mapstructure:"max_depth"`
	MaxElements       int           `mapstructure:"max_elements"`
	// What one element may carry (soap.Limits): checked before the element joins the tree, so that
	// no envelope within max_body_bytes costs more than linear work before its sender is known.
	MaxAttributes          int `mapstructure:"max_attributes"`            // per element, namespace declarations included
	MaxNamespaceDecls      int `mapstructure:"max_namespace_decls"`       // per element
	MaxNamespaceDeclsTotal int `mapstructure:"max_namespace_decls_total"` // in one envelope
	MaxNameBytes           int `mapstructure:"max_name_bytes"`            // of a local name or prefix
	MaxAttrValueBytes      int `mapstructure:"max_attr_value_bytes"`      // of an attribute value or namespace URI
	MaxTextBytes           int `mapstructure:"max_text_bytes"`            // of one run of text or a comment
	TLS                    TLS `mapstructure:"tls"`
	// PublicURL is the scheme, host and optional path prefix clients reach the broker at, as
	// the served WSDLs give it (e.g. https://sio-broker.gov.kz:8443). Empty: derived at start
	// from listen and TLS (a wildcard host becomes the machine's host name). It never comes from
	// a request's Host header, which is the client's word.
	PublicURL string `mapstructure:"public_url"`
	// InsecureListen lets serve listen in plain HTTP on an address other than loopback (listen
	// without http.tls, or operator.listen, which is always plain). Off, such a start is refused:
	// signed requests, replies and the dashboard's session would cross the network in clear.
	// For a TLS-terminating proxy on a private segment; also `serve --insecure-listen`.
	InsecureListen bool `mapstructure:"insecure_listen"`
	// Limits are the per-client and per-signer limits of the SOAP endpoints.
	Limits Limits `mapstructure:"limits"`
}

// Limits bound the SOAP requests of one client address (an IPv6 client by its /64), checked
// before anything of a request is read, and of one signer, checked once its signature verified,
// so that a flood from one of them neither takes the broker nor delays the others. Over a rate
// or a signer's requests in flight, SIO-RATE-LIMITED; over the connections,
// SIO-TOO-MANY-CONNECTIONS; all HTTP 429 with Retry-After, and journaled within
// journal.unauthenticated_refusals. A rate or a number of connections or requests of 0 is no
// limit of that kind.
//
// The e-government gateway relays the traffic of many systems from a few addresses, so the
// per-address defaults are far above what one client system sends; list the gateway's addresses
// in Allow and the per-address limits can be lowered for everyone else. The per-signer limits
// (the person or system whose certificate signed) are the fair key behind the gateway.
type Limits struct {
	PerClientRate        float64 `mapstructure:"per_client_rate"`        // requests a second, sustained, per address
	PerClientBurst       int     `mapstructure:"per_client_burst"`       // requests at once above the rate
	PerClientConnections int     `mapstructure:"per_client_connections"` // connections open at once per address
	PerSignerRate        float64 `mapstructure:"per_signer_rate"`        // requests a second, sustained, per signer
	PerSignerBurst       int     `mapstructure:"per_signer_burst"`       // requests at once above the rate
	// PerSignerConcurrent is how many requests for services of one signer the broker works on at
	// once (broker.Config.PerSigner says from when until when). The default, 32, is far above the
	// few requests a person's client keeps open, and leaves room for a batch client; at the
	// default service timeout (10 s) it caps what one signer's requests to a stalled service hold
	// at 32, where its rate alone would let it hold 500 (50/s × 10 s).
	PerSignerConcurrent int `mapstructure:"per_signer_concurrent"`
	// Allow lists the addresses and CIDR prefixes exempt from the per-address limits (the
	// gateway's); the per-signer limits still hold for the requests they relay.
	Allow []string `mapstructure:"allow"`
}

// AllowPrefixes parses Allow: a bare address is a prefix of its full length, an IPv4-mapped
// IPv6 address is its IPv4 address.
func (l Limits) AllowPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(l.Allow))
	for _, a := range l.Allow {
		a = strings.TrimSpace(a)
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("http.limits.allow: %q is neither an address nor a CIDR prefix; write e.g. 192.0.2.10 or 198.51.100.0/28", a)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// problems checks section http.limits, for Broker.Validate.
func (l Limits) problems() []error {
	var errs []error
	const key = "http.limits."
	for _, r := range []struct {
		name        string
		rate        float64
		burst, dflt int
	}{
		{"per_client", l.PerClientRate, l.PerClientBurst, 1000},
		{"per_signer", l.PerSignerRate, l.PerSignerBurst, 500},
	} {
		switch {
		case r.rate < 0 || math.IsNaN(r.rate) || math.IsInf(r.rate, 0):
			errs = append(errs, fmt.Errorf(key+"%s_rate: %v is out of range; use 0 (no limit) or a number of requests a second", r.name, r.rate))
		case r.burst < 0:
			errs = append(errs, fmt.Errorf(key+"%s_burst: %d is out of range; use 0 (the rate, rounded up) or more, the default is %d", r.name, r.burst, r.dflt))
		case r.rate > 0 && r.burst > 0 && float64(r.burst) < r.rate:
			// A burst below the rate would refuse an even load at the rate itself.
			errs = append(errs, fmt.Errorf(key+"%s_burst: %d is below %s_rate %v; raise it to at least the rate", r.name, r.burst, r.name, r.rate))
		}
	}
	for _, c := range []struct {
		name    string
		n, dflt int
	}{
		{"per_client_connections", l.PerClientConnections, 1024},
		{"per_signer_concurrent", l.PerSignerConcurrent, 32},
	} {
		if c.n < 0 {
			errs = append(errs, fmt.Errorf(key+"%s: %d is out of range; use 0 (no limit) or more, the default is %d", c.name, c.n, c.dflt))
		}
	}
	if _, err := l.AllowPrefixes(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// TLS switches HTTPS on. ClientAuth "require" accepts only client certificates that chain to the
// trusted roots.
type TLS struct {
	Enabled    bool   `mapstructure:"enabled"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	ClientAuth string `mapstructure:"client_auth"` // none, request or require
	// HSTSMaxAge is the max-age of the Strict-Transport-Security header every HTTPS response
	// carries: at least a year (MinHSTSMaxAge).
	HSTSMaxAge time.Duration `mapstructure:"hsts_max_age"`
}

// MinHSTSMaxAge is the shortest http.tls.hsts_max_age: one year (httpapi.MinHSTSMaxAge).
const MinHSTSMaxAge = 365 * 24 * time.Hour

// Operator is the operator's listener: /metrics, /readyz, /healthz and, with debug.pprof,
// /debug/. It is plain HTTP, apart from the SOAP listener, and on loopback by default, so that
// what operators watch is not open to whoever reaches the broker's public face.
type Operator struct {
	Listen string `mapstructure:"listen"` // host:port; default 127.0.0.1:8081
}

// Trust names the trusted roots (НУЦ РК) and the CRLs. Empty roots mean the development PKI,
// which serve takes only with --dev (Broker.Dev).
type Trust struct {
	Roots []string `mapstructure:"roots"`
	// Intermediates are the issuing CAs' certificates (НУЦ РК RSA and GOST under the root), used
	// to build chains whatever the client sends: a wsse:BinarySecurityToken carries the user's
	// certificate alone, and a key identifier no certificate at all. They are not trusted by
	// themselves; a chain must still end at one of Roots.
	Intermediates []string `mapstructure:"intermediates"`
	CRLs          []string `mapstructure:"crls"`
	// SigningEKUs are the extended key usages (dotted OIDs) of a signing certificate: a request
	// signer's certificate with an extended key usage extension must carry one of them, or it is
	// refused with SIO-CERT-USAGE (signing.SignerUsage). The default is the national PKI's
	// signing certificate, emailProtection; its authentication certificate has clientAuth.
	SigningEKUs []string `mapstructure:"signing_ekus"`
	// RequireNonRepudiation requires the nonRepudiation key usage of request signers, beside
	// digitalSignature, which is always required. The NCA's signing certificates have it and its
	// authentication certificates do not; off by default, as no published NCA profile that
	// requires it could be found.
	RequireNonRepudiation bool `mapstructure:"require_non_repudiation"`
	// CRLStale is what a CRL past its nextUpdate does: CRLStaleGrace ("grace", the default) keeps
	// it in force, its revocations included, for CRLStaleGraceFor, and then refuses every
	// certificate of its issuer; CRLStaleRefuse ("refuse") refuses them at nextUpdate. The grace
	// is the default because the broker does not fetch CRLs itself: an issuer late by an hour
	// would otherwise stop every request signed under it.
	CRLStale string `mapstructure:"crl_stale"`
	// CRLStaleGraceFor is the grace of CRLStale "grace".
	CRLStaleGraceFor time.Duration `mapstructure:"crl_stale_grace"`
	// CRLPoll is how often the CRL files are looked at for a change of content (a new CRL takes
	// effect within it, without SIGHUP). It is apart from the 2-second poll of the routes, rights
	// and maintenance files: a site that publishes CRLs by copying files may want it shorter, one
	// with large CRLs on a slow disk longer, since each poll reads and digests every CRL file.
	CRLPoll time.Duration `mapstructure:"crl_poll"`

	// CRLURLs are CRL URLs (http or https) fetched whatever the certificates name, such as the
	// issuing CAs' published CRLs; fetched beside the files, on the schedule below.
	CRLURLs []string `mapstructure:"crl_urls"`
	// CRLDistributionPoints fetches also the HTTP distribution points named by the configured CAs
	// and by the certificates of verified chains (a signer's names its issuer's CRL).
	CRLDistributionPoints bool `mapstructure:"crl_distribution_points"`
	// CRLFetchEvery is the longest time between two fetches of a CRL URL; each CRL is also
	// fetched at its nextUpdate, and a failed fetch is retried within a minute.
	CRLFetchEvery time.Duration `mapstructure:"crl_fetch_every"`
	// CRLFetchTimeout bounds one fetch, connection to last byte.
	CRLFetchTimeout time.Duration `mapstructure:"crl_fetch_timeout"`
	// CRLMaxBytes bounds the size of a fetched CRL: a distribution point must not fill the
	// broker's memory. A full CRL of a national CA that certifies every citizen is large, and is
	// held parsed in memory; the default, 64 MiB, leaves room for it to grow.
	CRLMaxBytes int64 `mapstructure:"crl_max_bytes"`
	// OCSP is what the OCSP responder a signer's certificate names does (signing.OCSPPolicy):
	// OCSPOff, OCSPPrefer (the default) or OCSPRequire.
	OCSP string `mapstructure:"ocsp"`
	// OCSPTimeout bounds one question to a responder; a request waits for it.
	OCSPTimeout time.Duration `mapstructure:"ocsp_timeout"`
	// OCSPCache is the longest an OCSP answer is reused; never past the answer's nextUpdate.
	// Zero asks the responder for every request.
	OCSPCache time.Duration `mapstructure:"ocsp_cache"`
}

// The values of trust.ocsp.
const (
	OCSPOff     = "off"
	OCSPPrefer  = "prefer"
	OCSPRequire = "require"
)

// DefaultSigningEKUs is trust.signing_ekus when the file does not set it: emailProtection, the
// extended key usage of the NCA's signing certificates. It is signing.DefaultSigningEKUs, which
// config may not import; a test holds the two equal.
var DefaultSigningEKUs = []string{"1.3.6.1.5.5.7.3.4"}

// Signing names the broker's own certificate and key. Empty means the development PKI, which
// serve takes only with --dev (Broker.Dev).
type Signing struct {
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// TimestampSkew is how far a client's clock may be from the broker's when a wsu:Timestamp is
	// checked: Created up to this far in the future, Expires up to this far in the past.
	TimestampSkew time.Duration `mapstructure:"timestamp_skew"`
	// RequireTimestamp makes a signed wsu:Timestamp mandatory in WS-Security signatures.
	RequireTimestamp bool `mapstructure:"require_timestamp"`
}

// Replay bounds how far a messageDate may be from the broker's clock, and how long seen
// messageIds are remembered. Retention must exceed twice the window, or a replay could slip
// through after its id was forgotten but while its date is still accepted.
type Replay struct {
	Window      time.Duration `mapstructure:"window"`
	IDRetention time.Duration `mapstructure:"id_retention"`
}

// Routing names the routing table and bounds the background wait for late services.
type Routing struct {
	// RoutesFile is the routing table (configs/routes.yaml, package routes): every service's
	// queue, adapter, backend and timeout. It is reloaded on SIGHUP and when it changes.
	RoutesFile string `mapstructure:"routes_file"`
	// AsyncTimeout is how long the broker keeps waiting, in the background, for the services a
	// synchronous request's reply went out without; the complete reply is then fetched on the
	// asynchronous channel. It is at least every service timeout of the routing table.
	AsyncTimeout time.Duration `mapstructure:"async_timeout"`
}

// Demo sizes the generated demo world of the embedded default.
type Demo struct {
	Seed          int64 `mapstructure:"seed"`
	People        int   `mapstructure:"people"`
	Organisations int   `mapstructure:"organisations"`
}

// AMQP configures the RabbitMQ transport (transport: amqp).
type AMQP struct {
	// URL is the AMQP URI of RabbitMQ, or the URIs of the nodes of a RabbitMQ cluster separated
	// by commas (AMQPURLProblems): each connection goes to one node and, when that node is lost,
	// to the next that accepts.
	URL      string `mapstructure:"url"`
	Instance string `mapstructure:"instance"` // names this broker's reply queue; stable across restarts. Empty: host name and listen port
	Prefetch int    `mapstructure:"prefetch"`
	// Concurrency is the number of messages handled at once per queue.
	Concurrency   int  `mapstructure:"concurrency"`
	ClassicQueues bool `mapstructure:"classic_queues"`
	DeliveryLimit int  `mapstructure:"delivery_limit"` // redeliveries before the dead-letter queue; 0: unlimited
	// Prefix goes in front of every queue and exchange name, so that separate deployments (or
	// test runs) can share one virtual host.
	Prefix string `mapstructure:"prefix"`
	// InProcessAdapters runs the demo adapters and case registries inside the broker process on
	// the same RabbitMQ, for demonstrations and tests; deployments run `siobroker adapter`.
	InProcessAdapters bool `mapstructure:"in_process_adapters"`
	// ReconnectMax bounds the back-off between attempts to reconnect to RabbitMQ: after an
	// outage the broker is back within about this long of RabbitMQ.
	ReconnectMax time.Duration `mapstructure:"reconnect_max"`
	// MessageKeyFile is the broker's master key (routing/msgauth; a private file, 0600), from
	// which every adapter's key is derived: each service message is authenticated with the key
	// of the adapter its service is routed to, and each answer checked against it. It serves the
	// in-process transport too. Empty: DataDir/transport.key, made on the first start, as the
	// development PKI is; `siobroker transport-key` makes a master key and the adapters' keys.
	MessageKeyFile string `mapstructure:"message_key_file"`
	// PreviousMessageKeyFile is the master key before a rotation: answers authenticated with its
	// adapters' keys are still accepted until PreviousMessageKeyUntil (RFC 3339, required with
	// it), so that answers in flight across the change are not refused.
	PreviousMessageKeyFile  string `mapstructure:"previous_message_key_file"`
	PreviousMessageKeyUntil string `mapstructure:"previous_message_key_until"`
	// MessageValidity is how long after its deadline a service message is accepted by its
	// adapter: time for `siobroker dlq replay` to send back a request an adapter gave up on; a
	// captured message is refused after it.
	MessageValidity time.Duration `mapstructure:"message_validity"`
}

// TransportKeyFile is the name of the broker's master key under the data directory when
// amqp.message_key_file is not set.
const TransportKeyFile = "transport.key"

// MessageKeyPath is the master key file in force: amqp.message_key_file, or the data
// directory's TransportKeyFile.
func (c Broker) MessageKeyPath() string {
	if c.AMQP.MessageKeyFile != "" {
		return c.AMQP.MessageKeyFile
	}
	return filepath.Join(c.DataDir, TransportKeyFile)
}

// PreviousKeyUntil is amqp.previous_message_key_until; zero when it is not set.
func (a AMQP) PreviousKeyUntil() (time.Time, error) {
	if a.PreviousMessageKeyUntil == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, a.PreviousMessageKeyUntil)
	if err != nil {
		return time.Time{}, fmt.Errorf("amqp.previous_message_key_until: %q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", a.PreviousMessageKeyUntil)
	}
	return t, nil
}

// Store tunes the embedded store (data_dir/broker.db) and bounds every write to it and to the
// journal.
type Store struct {
	// Synchronous is the store's durability: full (the default) syncs every commit to the disk
	// before the write returns, so a reply given out keeps its journal record through a power
	// loss; normal syncs only at checkpoints, faster, and a power loss may undo the last commits.
	Synchronous string `mapstructure:"synchronous"`
	// WriteTimeout bounds every write to the embedded store (the wait for its lock included; it
	// is also SQLite's busy_timeout) and every append to the journal, SQLite or PostgreSQL. A
	// request whose write is not taken within it is refused SIO-UNAVAILABLE.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
}

// Journal selects where the permanent journal lives and how it is sealed into archives (§37, 38).
type Journal struct {
	Driver         string        `mapstructure:"driver"` // sqlite (the embedded store) or postgres
	DSN            string        `mapstructure:"dsn"`    // for postgres
	ArchiveDir     string        `mapstructure:"archive_dir"`
	SegmentRecords int           `mapstructure:"segment_records"`
	SegmentBytes   int64         `mapstructure:"segment_bytes"`
	SealEvery      time.Duration `mapstructure:"seal_every"`
	// UnauthenticatedRefusals bounds what the journal keeps of requests refused before their
	// signature verified, which anyone can send (broker.UnauthenticatedLimits).
	UnauthenticatedRefusals UnauthenticatedRefusals `mapstructure:"unauthenticated_refusals"`
}

// UnauthenticatedRefusals bounds the journal's growth from requests refused before their signer
// is known: each such refusal keeps the body's size, SHA-256 and first PrefixBytes, never the
// body, and past PerClientPerMinute of one client address or TotalPerMinute of all, a minute's
// refusals are counted and journaled as one summary per client when the minute ends.
type UnauthenticatedRefusals struct {
	PrefixBytes        int `mapstructure:"prefix_bytes"`          // 1..4096; default 256
	PerClientPerMinute int `mapstructure:"per_client_per_minute"` // journaled one by one per client address (IPv6: /64); default 30
	TotalPerMinute     int `mapstructure:"total_per_minute"`      // journaled one by one of all clients; default 300
}

// Incidents configures the journal of emergencies (§39-41, App. 7): delay incidents, and the
// action plans of the emergencies an operator opens.
type Incidents struct {
	Threshold  time.Duration `mapstructure:"threshold"`
	CheckEvery time.Duration `mapstructure:"check_every"`
	// EmergencyPlans is the file of the action plans of the six kinds of emergency of Appendix 7
	// (configs/emergencies.yaml); read at start and by `siobroker incidents open`.
	EmergencyPlans string `mapstructure:"emergency_plans_file"`
}

// Reports configures reports and the prosecutor's export (§10, 51-53).
type Reports struct {
	ExportRoles []int `mapstructure:"export_roles"`
	// OversightRoles are the App. 1 roles whose holders of the reports right report across
	// organisations (operator/reports.Config.OversightRoles); none by default.
	OversightRoles []int `mapstructure:"oversight_roles"`
	// IndexEvery is how often the broker folds the journal's new records into the request index
	// that reports read; a report folds what is left first.
	IndexEvery time.Duration `mapstructure:"index_every"`
}

// Users holds the settings of the user registry's workflow of applications (§12–15).
type Users struct {
	// DecisionDeadline is how long the operator has to decide a submitted application: "в
	// течение суток" (§13), 24h by default; past it, the application is shown overdue.
	DecisionDeadline time.Duration `mapstructure:"decision_deadline"`
	// ConsentTemplate is the text of Appendix 6 the users sign (§17), with the fields
	// {{.City}}, {{.Date}}, {{.FullName}}, {{.Position}} and {{.Organisation}}.
	ConsentTemplate string `mapstructure:"consent_template"`
}

// HR is the automatic notice of §15 from the HR systems of the bodies (package access/hrfeed):
// feeds of moves and dismissals dropped in a folder, or POSTed to /hr/feed, each authenticated
// by the HMAC key the operator shares with its HR system. Off while keys_file is not set.
type HR struct {
	KeysFile string        `mapstructure:"keys_file"` // YAML "systems: {NAME: HEXKEY}", readable by the broker alone
	Dir      string        `mapstructure:"dir"`       // the folder the feeds are dropped in; none: no folder
	Poll     time.Duration `mapstructure:"poll"`      // how often the folder is read
	HTTP     bool          `mapstructure:"http"`      // serve POST /hr/feed on the broker's listener
}

// Notify is the delivery of the broker's notices (§45: a user blocked for a violation; package
// operator/notify): who gets them, and the mail server they go through. Without a recipients
// file no notice is written; without an SMTP server e-mail notices wait in the outbox.
type Notify struct {
	RecipientsFile string        `mapstructure:"recipients_file"` // the prosecutor's and each organisation's e-mails and webhooks
	Interval       time.Duration `mapstructure:"interval"`        // how often the outbox is delivered
	SMTP           NotifySMTP    `mapstructure:"smtp"`
}

// NotifySMTP is the mail server of the notices. STARTTLS is always required.
type NotifySMTP struct {
	Addr         string `mapstructure:"addr"` // host:port, e.g. mail.gov.kz:587
	From         string `mapstructure:"from"`
	Username     string `mapstructure:"username"`
	PasswordFile string `mapstructure:"password_file"` // a file holding the password (0600), never the password itself
	CAFile       string `mapstructure:"ca_file"`       // the CA of the server's certificate; empty: the system roots
}

// Debug holds the diagnostics a running broker can expose. Everything here is off by default.
type Debug struct {
	// PProf serves net/http/pprof under /debug/pprof/ and expvar at /debug/vars (the Go heap) on
	// the operator's listener, never the SOAP endpoint's; operator.listen must then be loopback,
	// as profiles expose the process's memory.
	PProf bool `mapstructure:"pprof"`
}

// Log selects the log format and level.
type Log struct {
	Format string `mapstructure:"format"` // text or json
	Level  string `mapstructure:"level"`  // debug, info, warn, error
}

// Defaults returns the embedded default: in-process transport and demo adapters under ./data
// (and, with serve --dev, the development PKI).
func Defaults() Broker {
	return Broker{
		Listen:               "127.0.0.1:8080",
		DataDir:              "./data",
		Endpoint:             "/SyncChannel/v10",
		Transport:            "gochannel",
		Rights:               "configs/rights.yaml",
		Maintenance:          "configs/maintenance.yaml",
		MaintenanceMinNotice: 24 * time.Hour, // siobroker.DefaultMaintenanceMinNotice; config imports nothing of the domain

		HTTP: HTTP{
			ReadHeaderTimeout:      5 * time.Second,
			ReadTimeout:            30 * time.Second,
			WriteTimeout:           90 * time.Second,
			IdleTimeout:            120 * time.Second,
			MaxBodyBytes:           1 << 20,
			MaxDepth:               64,
			MaxElements:            20000,
			MaxAttributes:          64,
			MaxNamespaceDecls:      16,
			MaxNamespaceDeclsTotal: 512,
			MaxNameBytes:           256,
			MaxAttrValueBytes:      8 << 10,
			MaxTextBytes:           1 << 20,
			TLS:                    TLS{ClientAuth: "none", HSTSMaxAge: MinHSTSMaxAge},
			// Generous, for the gateway (see Limits): far above one client system, below a flood.
			Limits: Limits{PerClientRate: 200, PerClientBurst: 1000, PerClientConnections: 1024,
				PerSignerRate: 50, PerSignerBurst: 500, PerSignerConcurrent: 32, Allow: []string{}},
		},
		Trust: Trust{Roots: []string{}, Intermediates: []string{}, CRLs: []string{}, SigningEKUs: slices.Clone(DefaultSigningEKUs),
			CRLStale: CRLStaleGrace, CRLStaleGraceFor: 24 * time.Hour, CRLPoll: 2 * time.Second,
			CRLURLs: []string{}, CRLDistributionPoints: true, CRLFetchEvery: time.Hour, CRLFetchTimeout: 30 * time.Second, CRLMaxBytes: 64 << 20,
			OCSP: OCSPPrefer, OCSPTimeout: 3 * time.Second, OCSPCache: 5 * time.Minute},
		Signing: Signing{TimestampSkew: time.Minute},
		Replay:  Replay{Window: 5 * time.Minute, IDRetention: 24 * time.Hour},
		Routing: Routing{RoutesFile: "configs/routes.yaml", AsyncTimeout: time.Hour},
		Demo:    Demo{Seed: 1, People: 200, Organisations: 50},
		Log:     Log{Format: "text", Level: "info"},
		Journal: Journal{Driver: "sqlite", ArchiveDir: "", SegmentRecords: 10000, SegmentBytes: 64 << 20, SealEvery: time.Minute,
			UnauthenticatedRefusals: UnauthenticatedRefusals{PrefixBytes: 256, PerClientPerMinute: 30, TotalPerMinute: 300}},
		Incidents: Incidents{Threshold: time.Hour, CheckEvery: time.Minute, EmergencyPlans: "configs/emergencies.yaml"},
		Store:     Store{Synchronous: "full", WriteTimeout: 5 * time.Second},
		AMQP: AMQP{URL: "amqp://guest:guest@127.0.0.1:5672/", Prefetch: 1, Concurrency: 8, DeliveryLimit: 5, ReconnectMax: 30 * time.Second,
			MessageValidity: time.Hour},
		Reports:  Reports{ExportRoles: []int{1}, OversightRoles: []int{}, IndexEvery: 5 * time.Second},
		Notify:   Notify{Interval: 10 * time.Second},
		Users:    Users{DecisionDeadline: 24 * time.Hour, ConsentTemplate: "configs/consent.tmpl"},
		HR:       HR{Poll: 200 * time.Millisecond},
		Operator: Operator{Listen: DefaultOperatorListen},
		Cases:    cases.DefaultConfig(),
		Tracing:  tracing.Config{ServiceName: "siobroker", SampleRatio: tracing.DefaultSampleRatio},
	}
}

// DefaultOperatorListen is operator.listen when nothing sets it: loopback, the port after the
// broker's default 8080.
const DefaultOperatorListen = "127.0.0.1:8081"

// Load reads file (if not empty) over the defaults, then the environment. A missing file is an
// error only when it was named explicitly; the default path may be absent.
func Load(file string, explicit bool) (Broker, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	setDefaults(v, Defaults())
	v.SetEnvPrefix("SIOBROKER")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			var notFound *os.PathError
			if explicit || !errors.As(err, &notFound) {
				return Broker{}, fmt.Errorf("read config %s: %w", file, err)
			}
		}
	}
	cfg, err := decode(v, file)
	if err != nil {
		return Broker{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Broker{}, fmt.Errorf("config %s: %w", file, err)
	}
	return cfg, nil
}

// Decode decodes the YAML content of a broker file over the defaults exactly as Load does, but
// without environment overrides and without Validate: it is what the file alone says, for a
// checker (siobroker config check) that reports every problem of the file, Validate's included,
// by its line. name labels the errors. Use Load to start a broker.
func Decode(name string, data []byte) (Broker, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	setDefaults(v, Defaults())
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return Broker{}, fmt.Errorf("read config %s: %w", name, err)
	}
	return decode(v, name)
}

// decode unmarshals v into a Broker, refusing unknown keys.
func decode(v *viper.Viper, file string) (Broker, error) {
	var cfg Broker
	hook := viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))
	if err := v.UnmarshalExact(&cfg, hook); err != nil {
		return Broker{}, fmt.Errorf("config %s: %w", file, err)
	}
	if !v.IsSet("cases.registries") {
		cfg.Cases.Registries = cases.DefaultConfig().Registries
	}
	if !v.IsSet("cases.parts") {
		cfg.Cases.Parts = cases.DefaultParts()
	}
	return cfg, nil
}

// setDefaults registers every key with viper, so that environment overrides reach keys the file
// does not mention.
func setDefaults(v *viper.Viper, d Broker) {
	v.SetDefault("listen", d.Listen)
	v.SetDefault("data_dir", d.DataDir)
	v.SetDefault("endpoint", d.Endpoint)
	v.SetDefault("transport", d.Transport)
	v.SetDefault("rights_file", d.Rights)
	v.SetDefault("http.read_header_timeout", d.HTTP.ReadHeaderTimeout)
	v.SetDefault("http.read_timeout", d.HTTP.ReadTimeout)
	v.SetDefault("http.write_timeout", d.HTTP.WriteTimeout)
	v.SetDefault("http.idle_timeout", d.HTTP.IdleTimeout)
	v.SetDefault("http.max_body_bytes", d.HTTP.MaxBodyBytes)
	v.SetDefault("http.limits.per_client_rate", d.HTTP.Limits.PerClientRate)
	v.SetDefault("http.limits.per_client_burst", d.HTTP.Limits.PerClientBurst)
	v.SetDefault("http.limits.per_client_connections", d.HTTP.Limits.PerClientConnections)
	v.SetDefault("http.limits.per_signer_rate", d.HTTP.Limits.PerSignerRate)
	v.SetDefault("http.limits.per_signer_burst", d.HTTP.Limits.PerSignerBurst)
	v.SetDefault("http.limits.per_signer_concurrent", d.HTTP.Limits.PerSignerConcurrent)
	v.SetDefault("http.limits.allow", d.HTTP.Limits.Allow)
	v.SetDefault("http.max_depth", d.HTTP.MaxDepth)
	v.SetDefault("http.max_elements", d.HTTP.MaxElements)
	v.SetDefault("http.max_attributes", d.HTTP.MaxAttributes)
	v.SetDefault("http.max_namespace_decls", d.HTTP.MaxNamespaceDecls)
	v.SetDefault("http.max_namespace_decls_total", d.HTTP.MaxNamespaceDeclsTotal)
	v.SetDefault("http.max_name_bytes", d.HTTP.MaxNameBytes)
	v.SetDefault("http.max_attr_value_bytes", d.HTTP.MaxAttrValueBytes)
	v.SetDefault("http.max_text_bytes", d.HTTP.MaxTextBytes)
	v.SetDefault("http.tls.enabled", d.HTTP.TLS.Enabled)
	v.SetDefault("http.tls.cert_file", d.HTTP.TLS.CertFile)
	v.SetDefault("http.tls.key_file", d.HTTP.TLS.KeyFile)
	v.SetDefault("http.tls.client_auth", d.HTTP.TLS.ClientAuth)
	v.SetDefault("http.tls.hsts_max_age", d.HTTP.TLS.HSTSMaxAge)
	v.SetDefault("http.public_url", d.HTTP.PublicURL)
	v.SetDefault("http.insecure_listen", d.HTTP.InsecureListen)
	v.SetDefault("trust.roots", d.Trust.Roots)
	v.SetDefault("trust.intermediates", d.Trust.Intermediates)
	v.SetDefault("trust.crls", d.Trust.CRLs)
	v.SetDefault("trust.signing_ekus", d.Trust.SigningEKUs)
	v.SetDefault("trust.require_non_repudiation", d.Trust.RequireNonRepudiation)
	v.SetDefault("trust.crl_stale", d.Trust.CRLStale)
	v.SetDefault("trust.crl_stale_grace", d.Trust.CRLStaleGraceFor)
	v.SetDefault("trust.crl_poll", d.Trust.CRLPoll)
	v.SetDefault("trust.crl_urls", d.Trust.CRLURLs)
	v.SetDefault("trust.crl_distribution_points", d.Trust.CRLDistributionPoints)
	v.SetDefault("trust.crl_fetch_every", d.Trust.CRLFetchEvery)
	v.SetDefault("trust.crl_fetch_timeout", d.Trust.CRLFetchTimeout)
	v.SetDefault("trust.crl_max_bytes", d.Trust.CRLMaxBytes)
	v.SetDefault("trust.ocsp", d.Trust.OCSP)
	v.SetDefault("trust.ocsp_timeout", d.Trust.OCSPTimeout)
	v.SetDefault("trust.ocsp_cache", d.Trust.OCSPCache)
	v.SetDefault("signing.cert_file", d.Signing.CertFile)
	v.SetDefault("signing.key_file", d.Signing.KeyFile)
	v.SetDefault("signing.timestamp_skew", d.Signing.TimestampSkew)
	v.SetDefault("signing.require_timestamp", d.Signing.RequireTimestamp)
	v.SetDefault("replay.window", d.Replay.Window)
	v.SetDefault("replay.id_retention", d.Replay.IDRetention)
	v.SetDefault("routing.routes_file", d.Routing.RoutesFile)
	v.SetDefault("maintenance_file", d.Maintenance)
	v.SetDefault("maintenance_min_notice", d.MaintenanceMinNotice)
	v.SetDefault("routing.async_timeout", d.Routing.AsyncTimeout)
	v.SetDefault("demo.seed", d.Demo.Seed)
	v.SetDefault("demo.people", d.Demo.People)
	v.SetDefault("demo.organisations", d.Demo.Organisations)
	v.SetDefault("log.format", d.Log.Format)
	v.SetDefault("log.level", d.Log.Level)
	v.SetDefault("amqp.url", d.AMQP.URL)
	v.SetDefault("amqp.instance", d.AMQP.Instance)
	v.SetDefault("amqp.prefetch", d.AMQP.Prefetch)
	v.SetDefault("amqp.concurrency", d.AMQP.Concurrency)
	v.SetDefault("amqp.classic_queues", d.AMQP.ClassicQueues)
	v.SetDefault("amqp.delivery_limit", d.AMQP.DeliveryLimit)
	v.SetDefault("amqp.in_process_adapters", d.AMQP.InProcessAdapters)
	v.SetDefault("amqp.prefix", d.AMQP.Prefix)
	v.SetDefault("amqp.reconnect_max", d.AMQP.ReconnectMax)
	v.SetDefault("amqp.message_key_file", d.AMQP.MessageKeyFile)
	v.SetDefault("amqp.previous_message_key_file", d.AMQP.PreviousMessageKeyFile)
	v.SetDefault("amqp.previous_message_key_until", d.AMQP.PreviousMessageKeyUntil)
	v.SetDefault("amqp.message_validity", d.AMQP.MessageValidity)
	v.SetDefault("store.synchronous", d.Store.Synchronous)
	v.SetDefault("store.write_timeout", d.Store.WriteTimeout)
	v.SetDefault("journal.driver", d.Journal.Driver)
	v.SetDefault("journal.dsn", d.Journal.DSN)
	v.SetDefault("journal.archive_dir", d.Journal.ArchiveDir)
	v.SetDefault("journal.segment_records", d.Journal.SegmentRecords)
	v.SetDefault("journal.segment_bytes", d.Journal.SegmentBytes)
	v.SetDefault("journal.seal_every", d.Journal.SealEvery)
	v.SetDefault("journal.unauthenticated_refusals.prefix_bytes", d.Journal.UnauthenticatedRefusals.PrefixBytes)
	v.SetDefault("journal.unauthenticated_refusals.per_client_per_minute", d.Journal.UnauthenticatedRefusals.PerClientPerMinute)
	v.SetDefault("journal.unauthenticated_refusals.total_per_minute", d.Journal.UnauthenticatedRefusals.TotalPerMinute)
	v.SetDefault("incidents.threshold", d.Incidents.Threshold)
	v.SetDefault("incidents.check_every", d.Incidents.CheckEvery)
	v.SetDefault("incidents.emergency_plans_file", d.Incidents.EmergencyPlans)
	v.SetDefault("reports.export_roles", d.Reports.ExportRoles)
	v.SetDefault("reports.oversight_roles", d.Reports.OversightRoles)
	v.SetDefault("reports.index_every", d.Reports.IndexEvery)
	v.SetDefault("users.decision_deadline", d.Users.DecisionDeadline)
	v.SetDefault("users.consent_template", d.Users.ConsentTemplate)
	v.SetDefault("hr.keys_file", d.HR.KeysFile)
	v.SetDefault("hr.dir", d.HR.Dir)
	v.SetDefault("hr.poll", d.HR.Poll)
	v.SetDefault("hr.http", d.HR.HTTP)
	v.SetDefault("notify.recipients_file", d.Notify.RecipientsFile)
	v.SetDefault("notify.interval", d.Notify.Interval)
	v.SetDefault("notify.smtp.addr", d.Notify.SMTP.Addr)
	v.SetDefault("notify.smtp.from", d.Notify.SMTP.From)
	v.SetDefault("notify.smtp.username", d.Notify.SMTP.Username)
	v.SetDefault("notify.smtp.password_file", d.Notify.SMTP.PasswordFile)
	v.SetDefault("notify.smtp.ca_file", d.Notify.SMTP.CAFile)
	v.SetDefault("operator.listen", d.Operator.Listen)
	v.SetDefault("debug.pprof", d.Debug.PProf)
	v.SetDefault("tracing.otlp_endpoint", d.Tracing.OTLPEndpoint)
	v.SetDefault("tracing.service_name", d.Tracing.ServiceName)
	v.SetDefault("tracing.sample_ratio", d.Tracing.SampleRatio)
	v.SetDefault("cases.check_timeout", d.Cases.CheckTimeout)
	v.SetDefault("cases.min_year", d.Cases.MinYear)
	for key, p := range d.Cases.Patterns.All() {
		v.SetDefault("cases.patterns."+key+".regexp", p.Regexp)
		v.SetDefault("cases.patterns."+key+".words", p.Words)
	}
	v.SetDefault("cases.open_statuses", d.Cases.OpenStatuses)
	// cases.registries has no viper default: viper would merge a file's map into it key by key,
	// and a basis could never be taken out. Nor has cases.parts, a list of maps. Load fills them
	// in when the key is absent.
}

// Validate checks what decoding cannot: ranges, and combinations of keys.
func (c Broker) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port: %w", c.Listen, err))
	}
	errs = append(errs, c.operatorProblems()...)
	if c.HTTP.PublicURL != "" {
		if err := checkPublicURL(c.HTTP.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("http.public_url: %q %w; write the scheme, host and port clients use, e.g. https://sio-broker.example:8443", c.HTTP.PublicURL, err))
		}
	}
	if !strings.HasPrefix(c.Endpoint, "/") {
		errs = append(errs, fmt.Errorf("endpoint: %q must start with /", c.Endpoint))
	}
	errs = append(errs, c.transportProblems()...)
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must not be empty"))
	}
	if c.MaintenanceMinNotice < 0 {
		errs = append(errs, fmt.Errorf("maintenance_min_notice: must not be negative, got %s; 0 asks for no notice, though a window that has begun is still an emergency", c.MaintenanceMinNotice))
	}
	// In the file's order, so that the same file gives the same list every time.
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout}, {"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout},
		{"replay.window", c.Replay.Window}, {"routing.async_timeout", c.Routing.AsyncTimeout},
	} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", t.key, t.d))
		}
	}
	if c.HTTP.MaxBodyBytes < 4096 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes: %d is too small for a signed envelope (min 4096)", c.HTTP.MaxBodyBytes))
	}
	// The floors are what a signed envelope of the interoperating clients needs; below them the
	// broker would refuse ordinary requests.
	for _, l := range []struct {
		key      string
		n, floor int
	}{
		{"http.max_attributes", c.HTTP.MaxAttributes, 8},
		{"http.max_namespace_decls", c.HTTP.MaxNamespaceDecls, 4},
		{"http.max_namespace_decls_total", c.HTTP.MaxNamespaceDeclsTotal, 16},
		{"http.max_name_bytes", c.HTTP.MaxNameBytes, 32},
		{"http.max_attr_value_bytes", c.HTTP.MaxAttrValueBytes, 256},
		{"http.max_text_bytes", c.HTTP.MaxTextBytes, 4096},
	} {
		if l.n < l.floor {
			errs = append(errs, fmt.Errorf("%s: %d is too small for a signed envelope (min %d)", l.key, l.n, l.floor))
		}
	}
	if c.Replay.IDRetention < 2*c.Replay.Window {
		errs = append(errs, fmt.Errorf("replay.id_retention: %s must be at least twice replay.window (%s)", c.Replay.IDRetention, c.Replay.Window))
	}
	if c.Routing.RoutesFile == "" {
		errs = append(errs, errors.New("routing.routes_file: required (configs/routes.yaml)"))
	}
	errs = append(errs, c.HTTP.TLS.problems()...)
	errs = append(errs, c.HTTP.Limits.problems()...)
	errs = append(errs, c.Trust.problems()...)
	errs = append(errs, c.Signing.problems()...)
	errs = append(errs, c.Cases.Problems()...)
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q; use text or json", c.Log.Format))
	}
	errs = append(errs, c.Store.problems()...)
	if c.Store.WriteTimeout >= c.HTTP.WriteTimeout && c.HTTP.WriteTimeout > 0 {
		errs = append(errs, fmt.Errorf("store.write_timeout: %s is not below http.write_timeout (%s): the fault of a request "+
			"the store refused would be cut off; shorten store.write_timeout", c.Store.WriteTimeout, c.HTTP.WriteTimeout))
	}
	if c.Trust.OCSPTimeout >= c.HTTP.WriteTimeout && c.HTTP.WriteTimeout > 0 {
		errs = append(errs, fmt.Errorf("trust.ocsp_timeout: %s is not below http.write_timeout (%s): a request waiting for the OCSP responder "+
			"would be cut off; shorten trust.ocsp_timeout", c.Trust.OCSPTimeout, c.HTTP.WriteTimeout))
	}
	errs = append(errs, c.Journal.problems()...)
	if c.Incidents.Threshold <= 0 || c.Incidents.CheckEvery <= 0 {
		errs = append(errs, errors.New("incidents.threshold and incidents.check_every must be positive"))
	}
	if c.Users.DecisionDeadline <= 0 {
		errs = append(errs, fmt.Errorf("users.decision_deadline: %s must be positive (§13: a day)", c.Users.DecisionDeadline))
	}
	if (c.HR.Dir != "" || c.HR.HTTP) && c.HR.KeysFile == "" {
		errs = append(errs, errors.New("hr.dir and hr.http need hr.keys_file: every HR feed is authenticated by its system's key"))
	}
	if c.HR.Poll <= 0 {
		errs = append(errs, fmt.Errorf("hr.poll: %s must be positive", c.HR.Poll))
	}
	if c.Notify.Interval <= 0 {
		errs = append(errs, fmt.Errorf("notify.interval: %s must be positive", c.Notify.Interval))
	}
	if c.Notify.SMTP.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Notify.SMTP.Addr); err != nil {
			errs = append(errs, fmt.Errorf("notify.smtp.addr: %q is not host:port", c.Notify.SMTP.Addr))
		}
		if c.Notify.SMTP.From == "" {
			errs = append(errs, errors.New("notify.smtp.from: required with notify.smtp.addr"))
		}
	}
	for _, r := range c.Reports.ExportRoles {
		if r < 1 || r > 19 {
			errs = append(errs, fmt.Errorf("reports.export_roles: %d is not a role of Appendix 1 (1..19)", r))
		}
	}
	for _, r := range c.Reports.OversightRoles {
		if r < 1 || r > 19 {
			errs = append(errs, fmt.Errorf("reports.oversight_roles: %d is not a role of Appendix 1 (1..19)", r))
		}
	}
	if c.Reports.IndexEvery < 100*time.Millisecond || c.Reports.IndexEvery > time.Hour {
		errs = append(errs, fmt.Errorf("reports.index_every: %s; use 100ms to 1h", c.Reports.IndexEvery))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q; use debug, info, warn or error", c.Log.Level))
	}
	errs = append(errs, c.Tracing.Problems("tracing")...)
	return errors.Join(errs...)
}

// operatorProblems checks operator.listen and debug.pprof, which is served on it.
func (c Broker) operatorProblems() []error {
	var errs []error
	_, port, err := net.SplitHostPort(c.Operator.Listen)
	if err != nil {
		return append(errs, fmt.Errorf("operator.listen: %q is not host:port: %w", c.Operator.Listen, err))
	}
	// Port 0 (a free port each, as tests use) cannot clash.
	if port != "0" && c.Operator.Listen == c.Listen {
		errs = append(errs, fmt.Errorf("operator.listen: %q is listen's address too; give the operator's endpoints a port of their own, e.g. %s",
			c.Operator.Listen, DefaultOperatorListen))
	}
	if c.Debug.PProf && !IsLoopback(c.Operator.Listen) {
		errs = append(errs, fmt.Errorf("debug.pprof: on, with operator.listen %q not on loopback: profiles expose the process's memory; "+
			"put operator.listen on 127.0.0.1, ::1 or localhost, or turn debug.pprof off", c.Operator.Listen))
	}
	return errs
}

// checkPublicURL says what is wrong with http.public_url: it must be an absolute http or https
// URL with a host, and nothing a WSDL address cannot carry (credentials, a query, a fragment).
func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must start with https:// or http://")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("has no host")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return errors.New("must not carry credentials, a query or a fragment")
	}
	return nil
}

// PlainListeners are the plain-HTTP listeners of c on an address other than loopback, each as
// "key address": listen without http.tls, and operator.listen, which is always plain. serve
// refuses to start with any unless http.insecure_listen (--insecure-listen) is on. A host name
// other than localhost counts as not loopback: what it resolves to can change.
func (c Broker) PlainListeners() []string {
	var out []string
	if !c.HTTP.TLS.Enabled && !IsLoopback(c.Listen) {
		out = append(out, "listen "+c.Listen)
	}
	if !IsLoopback(c.Operator.Listen) {
		out = append(out, "operator.listen "+c.Operator.Listen)
	}
	return out
}

// transportProblems checks transport and, when it is amqp, the keys of section amqp; the message
// keys whatever the transport, which authenticates its messages either way.
func (c Broker) transportProblems() []error {
	var errs []error
	if v := c.AMQP.MessageValidity; v < time.Minute || v > 24*time.Hour {
		errs = append(errs, fmt.Errorf("amqp.message_validity: %s; use 1m to 24h, the default is 1h", v))
	}
	until, err := c.AMQP.PreviousKeyUntil()
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.AMQP.PreviousMessageKeyFile != "" && until.IsZero() && err == nil:
		errs = append(errs, errors.New("amqp.previous_message_key_until: required with amqp.previous_message_key_file: until when answers "+
			"made with the previous key are accepted, e.g. 2027-01-31T00:00:00Z"))
	case c.AMQP.PreviousMessageKeyFile == "" && !until.IsZero():
		errs = append(errs, errors.New("amqp.previous_message_key_until: set without amqp.previous_message_key_file; remove it, or name the previous key"))
	}
	switch c.Transport {
	case "gochannel":
	case "amqp":
		errs = append(errs, AMQPURLProblems("amqp.url", c.AMQP.URL)...)
		if c.AMQP.Prefetch < 1 || c.AMQP.Concurrency < 1 || c.AMQP.DeliveryLimit < 0 {
			errs = append(errs, errors.New("amqp.prefetch and amqp.concurrency must be at least 1, amqp.delivery_limit not negative"))
		}
		if c.AMQP.ReconnectMax < time.Second || c.AMQP.ReconnectMax > 10*time.Minute {
			errs = append(errs, fmt.Errorf("amqp.reconnect_max: %s; use 1s to 10m", c.AMQP.ReconnectMax))
		}
	default:
		errs = append(errs, fmt.Errorf("transport: %q is not supported; use gochannel or amqp", c.Transport))
	}
	return errs
}

// problems checks section http.tls, for Broker.Validate.
func (t TLS) problems() []error {
	var errs []error
	switch t.ClientAuth {
	case "none", "request", "require":
	default:
		errs = append(errs, fmt.Errorf("http.tls.client_auth: %q; use none, request or require", t.ClientAuth))
	}
	if t.Enabled && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("http.tls: enabled needs cert_file and key_file"))
	}
	if t.HSTSMaxAge < MinHSTSMaxAge {
		errs = append(errs, fmt.Errorf("http.tls.hsts_max_age: %s is below a year; use at least %s (the default)", t.HSTSMaxAge, MinHSTSMaxAge))
	}
	return errs
}

// The values of trust.crl_stale.
const (
	CRLStaleGrace  = "grace"
	CRLStaleRefuse = "refuse"
)

// The bounds of trust.crl_poll: below 100ms the poll would be reading the CRL files most of the
// time; above 10m a CRL copied into place would wait longer than an operator expects for it.
const (
	minCRLPoll = 100 * time.Millisecond
	maxCRLPoll = 10 * time.Minute
)

// maxCRLStaleGrace bounds trust.crl_stale_grace: a week past nextUpdate a CRL no longer says
// much about revocation, and a typo such as 2400h should not pass.
const maxCRLStaleGrace = 7 * 24 * time.Hour

// StaleGrace is how long a CRL past its nextUpdate stays in force under the configured policy:
// zero for "refuse".
func (t Trust) StaleGrace() time.Duration {
	if t.CRLStale == CRLStaleRefuse {
		return 0
	}
	return t.CRLStaleGraceFor
}

// problems checks section trust, for Broker.Validate: trust.signing_ekus must name at least one
// OID, each a dotted OID, or no request signer with an extended key usage could be accepted; the
// CRL staleness policy must be one of its two values, with a grace in (0, 7 days].
func (t Trust) problems() []error {
	var errs []error
	switch t.CRLStale {
	case CRLStaleRefuse:
	case CRLStaleGrace:
		if t.CRLStaleGraceFor <= 0 || t.CRLStaleGraceFor > maxCRLStaleGrace {
			errs = append(errs, fmt.Errorf("trust.crl_stale_grace: %s; give a duration above 0 and at most %s (168h), or set trust.crl_stale: refuse",
				t.CRLStaleGraceFor, maxCRLStaleGrace))
		}
	default:
		errs = append(errs, fmt.Errorf("trust.crl_stale: %q; write %q (keep a CRL past its nextUpdate for trust.crl_stale_grace) or %q (refuse at nextUpdate)",
			t.CRLStale, CRLStaleGrace, CRLStaleRefuse))
	}
	if t.CRLPoll < minCRLPoll || t.CRLPoll > maxCRLPoll {
		errs = append(errs, fmt.Errorf("trust.crl_poll: %s is out of range; use %s to %s, the default is 2s", t.CRLPoll, minCRLPoll, maxCRLPoll))
	}
	errs = append(errs, t.fetchProblems()...)
	if len(t.SigningEKUs) == 0 {
		return append(errs, fmt.Errorf("trust.signing_ekus: empty; name the extended key usages of a signing certificate, "+
			"such as the national PKI's %s (emailProtection)", DefaultSigningEKUs[0]))
	}
	for i, s := range t.SigningEKUs {
		if !dottedOID(s) {
			errs = append(errs, fmt.Errorf("trust.signing_ekus[%d]: %q is not a dotted OID; write one such as %s", i, s, DefaultSigningEKUs[0]))
		}
	}
	return errs
}

// fetchProblems checks the keys of CRL fetching and OCSP, for Trust.problems. The ranges keep
// a typo from passing: a schedule of a second is for tests, a day is as long as a CRL may go
// unchecked; a timeout above 30s for OCSP would hold a request longer than a client waits.
func (t Trust) fetchProblems() []error {
	var errs []error
	for i, u := range t.CRLURLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("trust.crl_urls[%d]: %q is not an absolute http or https URL", i, u))
		}
	}
	for _, d := range []struct {
		key        string
		v, lo, hi  time.Duration
		defaultVal string
	}{
		{"trust.crl_fetch_every", t.CRLFetchEvery, time.Second, 24 * time.Hour, "1h"},
		{"trust.crl_fetch_timeout", t.CRLFetchTimeout, time.Second, 5 * time.Minute, "30s"},
		{"trust.ocsp_timeout", t.OCSPTimeout, 100 * time.Millisecond, 30 * time.Second, "3s"},
		{"trust.ocsp_cache", t.OCSPCache, 0, 24 * time.Hour, "5m"},
	} {
		if d.v < d.lo || d.v > d.hi {
			errs = append(errs, fmt.Errorf("%s: %s is out of range; use %s to %s, the default is %s", d.key, d.v, d.lo, d.hi, d.defaultVal))
		}
	}
	if t.CRLMaxBytes < 1<<10 || t.CRLMaxBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("trust.crl_max_bytes: %d is out of range; use 1024 to 1073741824 (1 GiB), the default is 67108864 (64 MiB)", t.CRLMaxBytes))
	}
	switch t.OCSP {
	case OCSPOff, OCSPPrefer, OCSPRequire:
	default:
		errs = append(errs, fmt.Errorf("trust.ocsp: %q; write %q (never ask a responder), %q (ask, and let a CRL in force decide when it does not answer) or %q (refuse when it does not answer)",
			t.OCSP, OCSPOff, OCSPPrefer, OCSPRequire))
	}
	return errs
}

// dottedOID reports whether s is an OID in dotted form: at least two arcs of decimal digits
// without leading zeros, the first 0, 1 or 2 (signing.ParseOID, which config may not import).
func dottedOID(s string) bool {
	arcs := strings.Split(s, ".")
	if len(arcs) < 2 || len(arcs[0]) != 1 || arcs[0][0] > '2' {
		return false
	}
	for _, a := range arcs {
		if a == "" || (len(a) > 1 && a[0] == '0') || strings.Trim(a, "0123456789") != "" {
			return false
		}
	}
	return true
}

// problems checks section signing, for Broker.Validate.
func (s Signing) problems() []error {
	var errs []error
	if (s.CertFile == "") != (s.KeyFile == "") {
		errs = append(errs, errors.New("signing: set both cert_file and key_file, or neither (development PKI)"))
	}
	if s.TimestampSkew < 0 || s.TimestampSkew > time.Hour {
		errs = append(errs, fmt.Errorf("signing.timestamp_skew: %s; use 0 to 1h", s.TimestampSkew))
	}
	return errs
}

// problems checks section store, for Broker.Validate.
func (s Store) problems() []error {
	var errs []error
	switch s.Synchronous {
	case "full", "normal":
	default:
		errs = append(errs, fmt.Errorf("store.synchronous: %q is not a setting; use full (every commit on the disk before "+
			"the reply goes out) or normal (faster, but a power loss may undo the last commits)", s.Synchronous))
	}
	if s.WriteTimeout < 100*time.Millisecond || s.WriteTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("store.write_timeout: %s is out of range (a request waits this long for a locked store "+
			"before it is refused); use 100ms to 1m, the default is 5s", s.WriteTimeout))
	}
	return errs
}

// problems checks section journal, for Broker.Validate.
func (j Journal) problems() []error {
	var errs []error
	switch j.Driver {
	case "sqlite":
	case "postgres":
		if j.DSN == "" {
			errs = append(errs, errors.New("journal.dsn: required with journal.driver postgres"))
		}
	default:
		errs = append(errs, fmt.Errorf("journal.driver: %q; use sqlite or postgres", j.Driver))
	}
	if j.SegmentRecords < 1 || j.SegmentBytes < 1 || j.SealEvery <= 0 {
		errs = append(errs, errors.New("journal.segment_records, segment_bytes and seal_every must be positive"))
	}
	u := j.UnauthenticatedRefusals
	const key = "journal.unauthenticated_refusals."
	if u.PrefixBytes < 1 || u.PrefixBytes > 4096 {
		errs = append(errs, fmt.Errorf(key+"prefix_bytes: %d is out of range; use 1 to 4096, the default is 256", u.PrefixBytes))
	}
	if u.PerClientPerMinute < 1 {
		errs = append(errs, fmt.Errorf(key+"per_client_per_minute: %d is out of range; use 1 or more, the default is 30", u.PerClientPerMinute))
	} else if u.TotalPerMinute < u.PerClientPerMinute {
		errs = append(errs, fmt.Errorf(key+"total_per_minute: %d is below per_client_per_minute %d; raise it to at least that, the default is 300",
			u.TotalPerMinute, u.PerClientPerMinute))
	}
	return errs
}

// IsLoopback reports whether addr is host:port with a loopback host: localhost, 127.0.0.0/8 or
// ::1. An empty host (":8080") and 0.0.0.0 or :: listen on every interface: not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AMQPURLProblems checks an AMQP URL setting (the broker's amqp.url, an adapter's
// transport.amqp_url): one amqp:// or amqps:// URI with a host, or several, one per node of a
// RabbitMQ cluster, separated by commas (blanks around them ignored). The nodes may have their
// own credentials and TLS; a comma in a password is written %2C. The problems name the entry by
// position and never repeat a password.
func AMQPURLProblems(key, value string) []error {
	var urls []string
	for u := range strings.SplitSeq(value, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	if len(urls) == 0 {
		return []error{fmt.Errorf("%s: required with transport amqp: amqp://user:password@host:5672/vhost, or one such URL per RabbitMQ node separated by commas", key)}
	}
	var errs []error
	for i, raw := range urls {
		which := key
		if len(urls) > 1 {
			which = fmt.Sprintf("%s (URL %d of %d)", key, i+1, len(urls))
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			// The error of url.Parse quotes the URL, password included.
			errs = append(errs, fmt.Errorf("%s: not a URL (a reserved character in the user name or password must be percent-encoded)", which))
		case u.Scheme != "amqp" && u.Scheme != "amqps" || u.Host == "":
			errs = append(errs, fmt.Errorf("%s: %q is not an amqp:// or amqps:// URL with a host", which, u.Redacted()))
		}
	}
	return errs
}
