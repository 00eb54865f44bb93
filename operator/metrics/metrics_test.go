package metrics

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/health"
)

// TestScrape: the snapshot's figures become per-service series; a queue figure the transport
// cannot tell (-1) has no series; a source that fails is counted and its series left out; the
// observed requests and answers are counted with bounded labels.
func TestScrape(t *testing.T) {
	m := New(Sources{
		Services: func(context.Context) ([]health.ServiceState, error) {
			return []health.ServiceState{
				{Service: 1, Dispatched: 6, Answered: 4, NoData: 1, ErrorAnswers: 1, Errors: 1, Timeouts: 2, InFlight: 0, Overdue: 1,
					LateAnswers: 1, RefusedAnswers: 3, Denied: 4, Maintenance: 2,
					ErrorRate: 0.4, QueueDepth: 7, DeadLetters: 2, OldestAge: 90 * time.Second},
				{Service: 2, QueueDepth: -1, DeadLetters: -1},
			}, errors.New("dead letters: connection refused")
		},
		OpenIncidents:       func(context.Context) (int, error) { return 3, nil },
		PendingApplications: func(context.Context) (int, int, error) { return 5, 2, nil },
		JournalHead:         func(context.Context) (int64, error) { return 0, errors.New("database is locked") },
		ArchivedUpTo:        func(context.Context) (int64, error) { return 120, nil },
		CRLFetches:          func() map[string]uint64 { return map[string]uint64{"applied": 2, "failed": 0} },
		OCSPResponses:       func() map[string]uint64 { return map[string]uint64{"good": 7, "revoked": 1} },
		JournalWrites:       func() map[string]uint64 { return map[string]uint64{"appended": 40} },
		Transport:           func(context.Context) error { return errors.New("the message router is not running") },
		Certificates: func() []Certificate {
			return []Certificate{
				{Role: "signing", Cert: &x509.Certificate{Subject: pkix.Name{CommonName: "broker"}, NotAfter: time.Unix(1798747200, 0)}},
				{Role: "root", Cert: &x509.Certificate{Subject: pkix.Name{CommonName: "root"}, NotAfter: time.Unix(1900000000, 0)}},
			}
		},
		CRLs: func() []*x509.RevocationList {
			return []*x509.RevocationList{
				{Issuer: pkix.Name{CommonName: "root"}, NextUpdate: time.Unix(1796000000, 0)},
				{Issuer: pkix.Name{CommonName: "root"}, NextUpdate: time.Unix(1797000000, 0)}, // the newer decides
				{Issuer: pkix.Name{CommonName: "sub"}},                                        // never out of date: no series
			}
		},
	})
	observe := m.ObserveRequests("sync")
	observe(siobroker.OutcomeAnswered, "", 20*time.Millisecond)
	observe(siobroker.OutcomeRefused, siobroker.CodeSigMissing, time.Millisecond)
	m.ObserveAnswer(1, siobroker.StatusOK, 2*time.Second)
	m.ObserveAnswer(1000, siobroker.StatusOK, time.Second) // outside Appendix 2: not a label value
	observeStage := ObserveStages(m, []string{"verify", "sign"})
	observeStage("sign", 3*time.Millisecond)
	m.ObserveUnauthenticatedRefusal(siobroker.CodeReplayDate, false)
	m.ObserveUnauthenticatedRefusal(siobroker.CodeReplayDate, true)
	m.ObserveUnauthenticatedRefusal(siobroker.CodeSigMissing, false)
	m.ObserveCRLReload(false)
	m.ObserveCRLReload(false)
	m.ObserveRateLimited("client_rate")
	m.ObserveRateLimited("client_rate")
	m.ObserveRateLimited("a label from elsewhere")
	m.ObserveRateLimited("signer_concurrent")
	m.ObserveTransportRefusal("broker", "missing")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`siobroker_service_dispatches_total{service="1"} 6`,
		`siobroker_crl_reloads_total{result="applied"} 0`,
		`siobroker_crl_reloads_total{result="refused"} 2`,
		`siobroker_crl_fetches_total{result="applied"} 2`,
		`siobroker_crl_fetches_total{result="failed"} 0`,
		`siobroker_ocsp_responses_total{result="good"} 7`,
		`siobroker_ocsp_responses_total{result="revoked"} 1`,
		`siobroker_service_answers_total{result="ok",service="1"} 2`,
		`siobroker_service_answers_total{result="no_data",service="1"} 1`,
		`siobroker_service_answers_total{result="error",service="1"} 1`,
		`siobroker_service_timeouts_total{service="1"} 2`,
		`siobroker_service_overdue{service="1"} 1`,
		`siobroker_service_refused_answers_total{service="1"} 3`,
		`siobroker_service_not_dispatched_total{reason="denied",service="1"} 4`,
		`siobroker_service_not_dispatched_total{reason="maintenance",service="1"} 2`,
		`siobroker_service_late_answers_total{service="1"} 1`,
		`siobroker_service_recent_error_ratio{service="1"} 0.4`,
		`siobroker_service_oldest_undelivered_seconds{service="1"} 90`,
		`siobroker_service_queue_depth{service="1"} 7`,
		`siobroker_service_dead_letters{service="1"} 2`,
		`siobroker_service_dispatches_total{service="2"} 0`,
		`siobroker_incidents_open 3`,
		`siobroker_applications_pending{overdue="false"} 3`,
		`siobroker_applications_pending{overdue="true"} 2`,
		`siobroker_archive_last_sequence 120`,
		`siobroker_journal_writes_total{result="appended"} 40`,
		`siobroker_journal_writes_total{result="failed"} 0`,
		`siobroker_transport_up 0`,
		`siobroker_certificate_expiry_timestamp_seconds{role="signing",subject="CN=broker"} 1.7987472e+09`,
		`siobroker_certificate_expiry_timestamp_seconds{role="root",subject="CN=root"} 1.9e+09`,
		`siobroker_crl_next_update_timestamp_seconds{issuer="CN=root"} 1.797e+09`,
		`siobroker_metrics_source_errors_total{source="journal"} 1`,
		`siobroker_metrics_source_errors_total{source="transport"} 1`,
		`siobroker_requests_total{channel="sync",code="none",outcome="answered"} 1`,
		`siobroker_requests_total{channel="sync",code="SIO-SIG-MISSING",outcome="refused"} 1`,
		`siobroker_request_duration_seconds_count{channel="sync"} 2`,
		`siobroker_service_answer_duration_seconds_count{service="1"} 1`,
		`siobroker_request_stage_seconds_count{stage="sign"} 1`,
		`siobroker_request_stage_seconds_bucket{stage="sign",le="0.005"} 1`,
		`siobroker_request_stage_seconds_bucket{stage="sign",le="0.002"} 0`,
		`siobroker_request_stage_seconds_count{stage="verify"} 0`, // declared before any observation
		`siobroker_unauthenticated_refusals_total{code="SIO-REPLAY-DATE"} 2`,
		`siobroker_unauthenticated_refusals_total{code="SIO-SIG-MISSING"} 1`,
		`siobroker_unauthenticated_refusals_summarised_total{code="SIO-REPLAY-DATE"} 1`,
		`siobroker_rate_limited_total{scope="client_rate"} 2`,
		`siobroker_rate_limited_total{scope="client_connections"} 0`, // declared before any refusal
		`siobroker_rate_limited_total{scope="signer_rate"} 0`,
		`siobroker_rate_limited_total{scope="signer_concurrent"} 1`,
		`siobroker_rate_limited_total{scope="other"} 1`,
		`siobroker_transport_refused_total{reason="missing",side="broker"} 1`,
		"go_goroutines ", "process_cpu_seconds_total ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, absent := range []string{`siobroker_service_queue_depth{service="2"}`, `siobroker_service_dead_letters{service="2"}`,
		"siobroker_journal_last_sequence ", `service="1000"`, `siobroker_unauthenticated_refusals_summarised_total{code="SIO-SIG-MISSING"}`,
		`issuer="CN=sub"`} {
		if strings.Contains(text, absent) {
			t.Errorf("/metrics has %s", absent)
		}
	}
	// Every metric is well formed by Prometheus's own linter.
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, Prefix) {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}
