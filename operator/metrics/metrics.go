// Package metrics serves the broker's Prometheus metrics at /metrics, from its own registry (not
// the process-wide default, so that tests and several brokers in one process do not share
// series). Names follow the Prometheus conventions under the prefix siobroker_; every label has a
// bounded set of values (a service number, a fault code, an outcome, a status), never a message
// id or an IIN.
//
// The per-service figures are read at scrape time from the operations snapshot
// (operations.Monitor), the one the dashboard and the command line read, so that they never
// disagree; only the latency histograms are observed as requests and answers happen.
package metrics

import (
	"cmp"
	"context"
	"crypto/x509"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/health"
)

// Prefix starts every metric name of the broker.
const Prefix = "siobroker_"

// Sources are what a scrape reads. Each may be nil: its metrics are then left out.
type Sources struct {
	Services      func(ctx context.Context) ([]health.ServiceState, error) // operations.Monitor.Services
	OpenIncidents func(ctx context.Context) (int, error)
	// PendingApplications counts the applications waiting for the operator's decision (§12–15),
	// and those of them past their deadline (§13: a day).
	PendingApplications func(ctx context.Context) (pending, overdue int, err error)
	JournalHead         func(ctx context.Context) (int64, error) // the Seq of the last record appended
	ArchivedUpTo        func(ctx context.Context) (int64, error) // the Seq of the last record sealed into an archive
	// CRLFetches and OCSPResponses count the fetches of CRLs from distribution points and the
	// questions to OCSP responders, by result (revocation.Fetcher.Counts, revocation.OCSP.Counts);
	// the results are a fixed set, so the label stays bounded.
	CRLFetches    func() map[string]uint64
	OCSPResponses func() map[string]uint64
	// JournalWrites counts the writes to the permanent journal by result, appended or failed
	// (journal.Counted.Writes).
	JournalWrites func() map[string]uint64
	// Transport reports whether the message transport is up (the readiness check's own: the
	// router runs and, on RabbitMQ, both connections are up); nil error: up.
	Transport func(ctx context.Context) error
	// Certificates are the certificates whose end an operator must see coming: the broker's
	// signing certificate and the trusted roots.
	Certificates func() []Certificate
	// CRLs are the CRLs in force (signing.TrustStore.CRLs), whose next update an operator must
	// see coming: past it and its grace, every certificate of the issuer is refused.
	CRLs func() []*x509.RevocationList
	// ReadTimeout bounds the reads of one scrape; default 5s.
	ReadTimeout time.Duration
}

// Certificate is a certificate whose end the metrics show, and the role it has in the broker: a
// small, fixed set of values ("signing", "root"), so that the label stays bounded.
type Certificate struct {
	Role string
	Cert *x509.Certificate
}

// Metrics holds the broker's registry and the metrics observed as things happen.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	answerDuration  *prometheus.HistogramVec
	stageDuration   *prometheus.HistogramVec
	unauthRefusals  *prometheus.CounterVec
	unauthSummed    *prometheus.CounterVec
	crlReloads      *prometheus.CounterVec
	rateLimited     *prometheus.CounterVec
	transportAuth   *prometheus.CounterVec
}

// latencyBuckets (seconds) reach past the default service timeout of 30s.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// stageBuckets (seconds) are finer than latencyBuckets at the low end: most stages of a request
// take a millisecond or less, and their tails are what an operator looks for.
var stageBuckets = []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New returns the broker's metrics, with the Go runtime and process collectors.
func New(src Sources) *Metrics {
	if src.ReadTimeout <= 0 {
		src.ReadTimeout = 5 * time.Second
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: Prefix + "requests_total",
			Help: "SOAP requests by channel (sync, async) and outcome (answered, refused, failed); code is the fault code, \"none\" for an answer.",
		}, []string{"channel", "outcome", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    Prefix + "request_duration_seconds",
			Help:    "Time from receiving a SOAP request to its reply or fault, by channel.",
			Buckets: latencyBuckets,
		}, []string{"channel"}),
		answerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    Prefix + "service_answer_duration_seconds",
			Help:    "Time from dispatching a service message to its adapter's answer, by service.",
			Buckets: latencyBuckets,
		}, []string{"service"}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    Prefix + "request_stage_seconds",
			Help:    "Time a request spent in each step of the broker's pipeline (verify, replay, authorize, journal_request, case_check, touch, services, sign, journal_reply).",
			Buckets: stageBuckets,
		}, []string{"stage"}),
		unauthRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: Prefix + "unauthenticated_refusals_total",
			Help: "Requests refused before their signature verified (anyone can send them), by fault code; each is journaled by size, digest and prefix, or summarised.",
		}, []string{"code"}),
		unauthSummed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: Prefix + "unauthenticated_refusals_summarised_total",
			Help: "Of siobroker_unauthenticated_refusals_total, those past journal.unauthenticated_refusals counted into a per-client summary record instead of journaled one by one, by fault code.",
		}, []string{"code"}),
		crlReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: Prefix + "crl_reloads_total",
			Help: "Reloads of the CRL files (on SIGHUP or a file change), by result: applied, or refused (the CRLs in force stay; the log says why).",
		}, []string{"result"}),
		transportAuth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: Prefix + "transport_refused_total",
			Help: "Transport messages refused as unauthenticated (routing/msgauth), by who refused them (broker: an answer; adapter: a service message, by the adapters in the broker's process) and why; each is dead-lettered with the reason.",
		}, []string{"side", "reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: Prefix + "rate_limited_total",
			Help: "Requests refused by the per-client and per-signer limits (http.limits), by the limit: client_rate, client_connections (before anything was read), signer_rate or signer_concurrent (after the signature); each is journaled, or summarised past journal.unauthenticated_refusals.",
		}, []string{"scope"}),
	}
	for _, s := range RateLimitScopes {
		m.rateLimited.WithLabelValues(s) // at zero from the start, so that a rate() sees the first refusal
	}
	// Both series from the start, at zero, so that an alert on refusals sees the series before
	// the first reload.
	m.crlReloads.WithLabelValues("applied")
	m.crlReloads.WithLabelValues("refused")
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.answerDuration, m.stageDuration, m.unauthRefusals, m.unauthSummed, m.crlReloads,
		m.rateLimited, m.transportAuth,
		&snapshot{src: src, failures: make(map[string]uint64)},
	)
	return m
}

// Handler serves the registry in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry is the broker's registry, for tests and further collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// ObserveRequests returns the httpapi.Config.Observe of a channel ("sync" or "async").
func (m *Metrics) ObserveRequests(channel string) func(siobroker.Outcome, siobroker.Code, time.Duration) {
	duration := m.requestDuration.WithLabelValues(channel)
	return func(o siobroker.Outcome, code siobroker.Code, elapsed time.Duration) {
		c := string(code)
		if c == "" {
			c = "none"
		}
		m.requests.WithLabelValues(channel, string(o), c).Inc()
		duration.Observe(elapsed.Seconds())
	}
}

// ObserveAnswer records a service answer's latency (routing.DispatcherConfig.ObserveAnswer).
func (m *Metrics) ObserveAnswer(service int, _ siobroker.ResultStatus, latency time.Duration) {
	if service < siobroker.FirstService || service > siobroker.LastService {
		return // a label value outside Appendix 2 would be unbounded
	}
	m.answerDuration.WithLabelValues(strconv.Itoa(service)).Observe(latency.Seconds())
}

// ObserveUnauthenticatedRefusal counts a refusal of a request whose signer was not known, and
// whether it was summarised instead of journaled one by one (broker.Deps.ObserveUnauthenticated).
// The code is a fault code of the broker's fixed set, so the label stays bounded.
func (m *Metrics) ObserveUnauthenticatedRefusal(code siobroker.Code, summarised bool) {
	c := cmp.Or(string(code), "none")
	m.unauthRefusals.WithLabelValues(c).Inc()
	if summarised {
		m.unauthSummed.WithLabelValues(c).Inc()
	}
}

// ObserveTransportRefusal counts a transport message refused as unauthenticated: side is
// "broker" (an answer) or "adapter" (a service message), reason one of the fixed reasons of
// routing/msgauth, so the labels stay bounded.
func (m *Metrics) ObserveTransportRefusal(side, reason string) {
	m.transportAuth.WithLabelValues(side, reason).Inc()
}

// ObserveCRLReload counts a reload of the CRL files, applied or refused.
func (m *Metrics) ObserveCRLReload(applied bool) {
	if applied {
		m.crlReloads.WithLabelValues("applied").Inc()
		return
	}
	m.crlReloads.WithLabelValues("refused").Inc()
}

// RateLimitScopes are the values of the scope label of siobroker_rate_limited_total.
var RateLimitScopes = []string{"client_rate", "client_connections", "signer_rate", "signer_concurrent"}

// ObserveRateLimited counts a request refused by the limit scope (one of RateLimitScopes; any
// other is counted as "other", to keep the label bounded).
func (m *Metrics) ObserveRateLimited(scope string) {
	if !slices.Contains(RateLimitScopes, scope) {
		scope = "other"
	}
	m.rateLimited.WithLabelValues(scope).Inc()
}

// ObserveStages returns the observer of a pipeline's stages (broker.Deps.ObserveStage), which
// records in m the time a request spent in each. names are every stage: their series are
// exported from the start, at zero, so that a dashboard sees each before the first request.
func ObserveStages[S ~string](m *Metrics, names []S) func(stage S, d time.Duration) {
	for _, n := range names {
		m.stageDuration.WithLabelValues(string(n))
	}
	return func(stage S, d time.Duration) {
		m.stageDuration.WithLabelValues(string(stage)).Observe(d.Seconds())
	}
}

// snapshot collects, at each scrape, the metrics read from Sources.
type snapshot struct {
	src Sources

	mu       sync.Mutex
	failures map[string]uint64 // reads that failed, by source
}

// The sources, as the label of siobroker_metrics_source_errors_total names them.
var sourceNames = []string{"transport", "incidents", "journal", "archive", "applications"}

// Results of the journal's writes, as siobroker_journal_writes_total labels them.
var journalResults = []string{"appended", "failed"}

var (
	descDispatches = prometheus.NewDesc(Prefix+"service_dispatches_total",
		"Service messages the broker set out to send to the service's queue.", []string{"service"}, nil)
	descAnswers = prometheus.NewDesc(Prefix+"service_answers_total",
		"Adapter answers within the service's time limit, by service and result: ok (records), no_data (NO_DATA), error (the source's error). An answer that the source did not answer in time is a timeout, not one of these.",
		[]string{"service", "result"}, nil)
	descDispatchErrors = prometheus.NewDesc(Prefix+"service_dispatch_errors_total",
		"Service messages that could not be sent, or whose answer could not be read.", []string{"service"}, nil)
	descTimeouts = prometheus.NewDesc(Prefix+"service_timeouts_total",
		"Service messages without a result within the service's time limit: no answer, the adapter's TIMEOUT answer, or the request cancelled first; counted when the limit passes, also when the answer is still waited for in the background.",
		[]string{"service"}, nil)
	descLateAnswers = prometheus.NewDesc(Prefix+"service_late_answers_total",
		"Adapter answers that came after their message's time limit (it was counted a timeout): during the background wait for late services, or after it (journaled as late records).", []string{"service"}, nil)
	descRefusedAnswers = prometheus.NewDesc(Prefix+"service_refused_answers_total",
		"Answers refused as unauthenticated (not made by the adapter the service is routed to); each is dead-lettered, and its message ends as a timeout unless the real answer comes.", []string{"service"}, nil)
	descNotDispatched = prometheus.NewDesc(Prefix+"service_not_dispatched_total",
		"Service results the broker gave without dispatching a message, by reason: denied (the access rights, App. 2) or maintenance (a maintenance window).", []string{"service", "reason"}, nil)
	descInFlight = prometheus.NewDesc(Prefix+"service_in_flight",
		"Service messages sent, within their time limit, and awaiting their answer.", []string{"service"}, nil)
	descOverdue = prometheus.NewDesc(Prefix+"service_overdue",
		"Service messages past their time limit (counted as timeouts) whose answer is still waited for in the background (routing.async_timeout).", []string{"service"}, nil)
	descErrorRatio = prometheus.NewDesc(Prefix+"service_recent_error_ratio",
		"Errors and timeouts among the service messages that ended in the last five minutes.", []string{"service"}, nil)
	descOldest = prometheus.NewDesc(Prefix+"service_oldest_undelivered_seconds",
		"Age of the oldest service message not yet answered; 0 when none waits.", []string{"service"}, nil)
	descQueueDepth = prometheus.NewDesc(Prefix+"service_queue_depth",
		"Messages ready in the service's queue (RabbitMQ only).", []string{"service"}, nil)
	descDeadLetters = prometheus.NewDesc(Prefix+"service_dead_letters",
		"The service's messages in the dead-letter queue (RabbitMQ only).", []string{"service"}, nil)
	descApplications = prometheus.NewDesc(Prefix+"applications_pending",
		"Applications (App. 5) waiting for the operator's decision, by whether they are past their deadline (users.decision_deadline; §13: a day).",
		[]string{"overdue"}, nil)
	descIncidents = prometheus.NewDesc(Prefix+"incidents_open",
		"Open delay incidents.", nil, nil)
	descJournal = prometheus.NewDesc(Prefix+"journal_last_sequence",
		"Sequence number of the last record appended to the journal.", nil, nil)
	descArchive = prometheus.NewDesc(Prefix+"archive_last_sequence",
		"Sequence number of the last journal record sealed into an archive; 0 before the first.", nil, nil)
	descCRLFetches = prometheus.NewDesc(Prefix+"crl_fetches_total",
		"Fetches of CRLs from distribution points and trust.crl_urls, by result: applied (a new CRL in force), unchanged, refused (it does not verify, or is older than the CRL in force), failed (not fetched; the CRL in force stays under trust.crl_stale).",
		[]string{"result"}, nil)
	descOCSPResponses = prometheus.NewDesc(Prefix+"ocsp_responses_total",
		"Questions to OCSP responders (answers from the cache not counted), by result: good, revoked, unknown, failed (no usable answer; trust.ocsp decides).",
		[]string{"result"}, nil)
	descJournalWrites = prometheus.NewDesc(Prefix+"journal_writes_total",
		"Writes to the permanent journal (each of one or more records, in one transaction), by result: appended, or failed (the store refused or did not take it in its write timeout; the request it was for is answered SIO-UNAVAILABLE). Writes given up by a client that went away are not counted.",
		[]string{"result"}, nil)
	descTransportUp = prometheus.NewDesc(Prefix+"transport_up",
		"1 when the message transport is up (the router runs and, on RabbitMQ, both connections are up), else 0: new requests are refused SIO-UNAVAILABLE.", nil, nil)
	descCertExpiry = prometheus.NewDesc(Prefix+"certificate_expiry_timestamp_seconds",
		"The end of validity (notAfter, Unix seconds) of the broker's signing certificate (role signing) and of each trusted root (role root), by subject.",
		[]string{"role", "subject"}, nil)
	descCRLNextUpdate = prometheus.NewDesc(Prefix+"crl_next_update_timestamp_seconds",
		"The latest nextUpdate (Unix seconds) among the CRLs in force of each issuer: past it and trust.crl_stale's grace, every certificate the issuer issued is refused.",
		[]string{"issuer"}, nil)
	descSourceErrors = prometheus.NewDesc(Prefix+"metrics_source_errors_total",
		"Scrapes in which a source could not be read (its series are missing from that scrape), by source.", []string{"source"}, nil)
)

func (s *snapshot) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDispatches, descAnswers, descDispatchErrors, descTimeouts, descLateAnswers, descInFlight,
		descOverdue, descRefusedAnswers, descNotDispatched,
		descErrorRatio, descOldest, descQueueDepth, descDeadLetters, descIncidents, descApplications, descJournal, descArchive, descSourceErrors,
		descCRLFetches, descOCSPResponses, descJournalWrites, descTransportUp, descCertExpiry, descCRLNextUpdate} {
		ch <- d
	}
}

func (s *snapshot) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), s.src.ReadTimeout)
	defer cancel()
	failed := map[string]bool{}
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, name := range sourceNames {
			if failed[name] {
				s.failures[name]++
			}
			ch <- prometheus.MustNewConstMetric(descSourceErrors, prometheus.CounterValue, float64(s.failures[name]), name)
		}
	}()
	if s.src.Services != nil {
		states, err := s.src.Services(ctx)
		failed["transport"] = err != nil // the snapshot is whole but for the message server's figures
		for _, st := range states {
			s.service(ch, st)
		}
	}
	gauge := func(source string, desc *prometheus.Desc, read func(context.Context) (int64, error)) {
		if read == nil {
			return
		}
		v, err := read(ctx)
		if err != nil {
			failed[source] = true
			return
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(v))
	}
	if s.src.PendingApplications != nil {
		if pending, overdue, err := s.src.PendingApplications(ctx); err != nil {
			failed["applications"] = true
		} else {
			ch <- prometheus.MustNewConstMetric(descApplications, prometheus.GaugeValue, float64(pending-overdue), "false")
			ch <- prometheus.MustNewConstMetric(descApplications, prometheus.GaugeValue, float64(overdue), "true")
		}
	}
	if s.src.OpenIncidents != nil {
		gauge("incidents", descIncidents, func(ctx context.Context) (int64, error) {
			n, err := s.src.OpenIncidents(ctx)
			return int64(n), err
		})
	}
	gauge("journal", descJournal, s.src.JournalHead)
	gauge("archive", descArchive, s.src.ArchivedUpTo)
	if s.src.Transport != nil {
		up := 1.0
		if err := s.src.Transport(ctx); err != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descTransportUp, prometheus.GaugeValue, up)
	}
	if s.src.JournalWrites != nil {
		writes := s.src.JournalWrites()
		for _, r := range journalResults { // both, at zero too: an alert's rate() sees the first failure
			ch <- prometheus.MustNewConstMetric(descJournalWrites, prometheus.CounterValue, float64(writes[r]), r)
		}
	}
	if s.src.Certificates != nil {
		for _, c := range s.src.Certificates() {
			if c.Cert == nil {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(c.Cert.NotAfter.Unix()), c.Role, c.Cert.Subject.String())
		}
	}
	if s.src.CRLs != nil {
		for issuer, next := range nextUpdates(s.src.CRLs()) {
			ch <- prometheus.MustNewConstMetric(descCRLNextUpdate, prometheus.GaugeValue, float64(next.Unix()), issuer)
		}
	}
	for desc, read := range map[*prometheus.Desc]func() map[string]uint64{descCRLFetches: s.src.CRLFetches, descOCSPResponses: s.src.OCSPResponses} {
		if read == nil {
			continue
		}
		for result, n := range read() {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(n), result)
		}
	}
}

func (s *snapshot) service(ch chan<- prometheus.Metric, st health.ServiceState) {
	svc := strconv.Itoa(st.Service)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{svc}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, svc)
	}
	counter(descDispatches, st.Dispatched)
	counter(descAnswers, st.Answered-st.ErrorAnswers-st.NoData, "ok")
	counter(descAnswers, st.NoData, "no_data")
	counter(descAnswers, st.ErrorAnswers, "error")
	counter(descDispatchErrors, st.DispatchErrors)
	counter(descTimeouts, st.Timeouts)
	counter(descLateAnswers, st.LateAnswers)
	counter(descRefusedAnswers, st.RefusedAnswers)
	counter(descNotDispatched, st.Denied, "denied")
	counter(descNotDispatched, st.Maintenance, "maintenance")
	gauge(descInFlight, float64(st.InFlight))
	gauge(descOverdue, float64(st.Overdue))
	gauge(descErrorRatio, st.ErrorRate)
	gauge(descOldest, st.OldestAge.Seconds())
	// -1 means the transport cannot tell, or the read failed: no series rather than a false value.
	if st.QueueDepth >= 0 {
		gauge(descQueueDepth, float64(st.QueueDepth))
	}
	if st.DeadLetters >= 0 {
		gauge(descDeadLetters, float64(st.DeadLetters))
	}
}

// nextUpdates returns, per issuer of crls, the latest nextUpdate among its CRLs: the newest of an
// issuer's CRLs keeps its certificates verifiable, whatever older ones say. A CRL without one
// never goes out of date and is left out, as is an issuer with no other.
func nextUpdates(crls []*x509.RevocationList) map[string]time.Time {
	out := make(map[string]time.Time)
	for _, c := range crls {
		if c == nil || c.NextUpdate.IsZero() {
			continue
		}
		issuer := c.Issuer.String()
		if c.NextUpdate.After(out[issuer]) {
			out[issuer] = c.NextUpdate
		}
	}
	return out
}
