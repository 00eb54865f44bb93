package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/reqlog"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/metrics"
	"github.com/sio-pso/siobroker/signing"
)

// brokerOps is what operators watch of a running broker: the snapshot of the services (which the
// metrics, the dashboard and the command line read), the Prometheus metrics and the readiness
// checks.
type brokerOps struct {
	Monitor   *health.Monitor
	Metrics   *metrics.Metrics
	Readiness *health.Readiness
}

// opsDeps are the parts of a starting broker the readiness checks read.
type opsDeps struct {
	journal siobroker.Journal
	signer  *signing.Signer
}

// Paths of the operations endpoints on the operator's listener (operator_server.go).
const (
	MetricsPath = "/metrics"
	ReadyzPath  = "/readyz"
)

// signingKeyCheckTTL is how long a probe signature of the signing key check is trusted.
const signingKeyCheckTTL = 30 * time.Second

// logTimeInAstana writes each log line's time in Astana time with its offset, as every time the
// broker records.
func logTimeInAstana(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
		a.Value = slog.TimeValue(a.Value.Time().In(siobroker.Astana))
	}
	return a
}

// withRequestIDs makes every line logged with a request's context carry its ids (reqlog).
func withRequestIDs(logger *slog.Logger) *slog.Logger { return reqlog.Logger(logger) }

// newMetrics builds the broker's metrics, whose per-service figures services gives at each scrape
// (the snapshot's, brokerOps.services).
func (b *Broker) newMetrics(p *parts, services func(context.Context) ([]health.ServiceState, error)) *metrics.Metrics {
	archiveDir := archiveDirOf(p.cfg)
	j, trust, signer := p.journal, p.trust, p.signer
	return metrics.New(metrics.Sources{
		Services: services,
		OpenIncidents: func(ctx context.Context) (int, error) {
			open, err := b.db.Incidents(ctx, false)
			return len(open), err
		},
		PendingApplications: func(ctx context.Context) (pending, overdue int, err error) {
			list, err := b.db.SubmittedApplications(ctx, true)
			now := p.clock.Now()
			for _, sa := range list {
				if sa.Overdue(now) {
					overdue++
				}
			}
			return len(list), overdue, err
		},
		JournalHead: func(ctx context.Context) (int64, error) {
			seq, _, err := j.Head(ctx)
			return seq, err
		},
		JournalWrites: p.journalWrites.Writes,
		ArchivedUpTo:  func(context.Context) (int64, error) { return archive.LastSealedSeq(archiveDir) },
		CRLFetches:    b.revocation.fetcher.Counts,
		OCSPResponses: func() map[string]uint64 {
			if b.revocation.ocsp == nil {
				return nil // trust.ocsp: off
			}
			return b.revocation.ocsp.Counts()
		},
		// The readiness check's own test; the router runs by the first scrape.
		Transport: b.transportReady,
		Certificates: func() []metrics.Certificate {
			out := []metrics.Certificate{{Role: "signing", Cert: signer.Certificate()}}
			for _, root := range trust.Roots() {
				out = append(out, metrics.Certificate{Role: "root", Cert: root})
			}
			return out
		},
		CRLs: trust.CRLs,
	})
}

// services is the snapshot of the services as the metrics read it: ops.Monitor's. The metrics are
// built before the dispatcher, which reports every answer's latency to them, and the monitor after
// it, as it reads the dispatcher's counters (startDispatcher); the monitor is set before the HTTP
// server serves the first scrape.
func (o *brokerOps) services(ctx context.Context) ([]health.ServiceState, error) {
	return o.Monitor.Services(ctx)
}

// newMonitor builds the snapshot of the services over the dispatcher's counters, the tracker's
// delays and, on RabbitMQ, the queues, as the routing table in force names them.
func (b *Broker) newMonitor(dispatcher health.DispatchStats, tracker health.DelayTracker, clock siobroker.Clock) (*health.Monitor, error) {
	mcfg := health.MonitorConfig{
		Dispatcher: dispatcher, Delays: tracker, Clock: clock,
		QueueName: b.live.routes.Queue, // the routing table in force
	}
	if b.msg.amqp != nil {
		mcfg.Queues = b.msg.amqp
	}
	return health.NewMonitor(mcfg)
}

// startOperations adds the readiness checks over the broker's parts to b.ops (whose metrics and
// snapshot startDispatcher built), warns now if the broker's certificate is near its end, and
// starts the daily warning. The router and the transport must be running. operatorHandler
// serves the operations endpoints; Metrics.ObserveRequests is the request observer of a channel.
func (b *Broker) startOperations(ctx context.Context, cfg config.Broker, clock siobroker.Clock, logger *slog.Logger, deps opsDeps) error {
	checks := []health.Check{
		health.FuncCheck("transport", "the message transport is not ready", b.transportReady),
		health.FuncCheck("store", "the store does not answer", b.db.Ping),
	}
	own := deps.journal
	if c, ok := own.(*journal.Counted); ok {
		own = c.Unwrap()
	}
	if pinger, ok := own.(interface{ Ping(context.Context) error }); ok && cfg.Journal.Driver == "postgres" {
		checks = append(checks, health.FuncCheck("journal", "the journal database does not answer", pinger.Ping))
	}
	checks = append(checks,
		health.SigningKeyCheck(deps.signer, clock, signingKeyCheckTTL),
		health.CertificateCheck(deps.signer.Certificate(), clock))
	readiness, err := health.NewReadiness(health.ReadinessConfig{Timeout: 5 * time.Second,
		Logger: logger.With("component", "readiness"), Checks: checks})
	if err != nil {
		return err
	}
	b.ops.Readiness = readiness
	certLog := logger.With("component", "certificate")
	health.WarnCertificate(deps.signer.Certificate(), clock, certLog)
	b.jobs.Go(func() {
		every(ctx, 24*time.Hour, func(context.Context) { health.WarnCertificate(deps.signer.Certificate(), clock, certLog) })
	})
	return nil
}

// transportReady is the transport's readiness: the router runs and, on RabbitMQ, both
// connections are up. Its texts are public: they name no address.
func (b *Broker) transportReady(context.Context) error {
	if !b.msg.router.IsRunning() {
		return &health.Public{Text: "the message router is not running"}
	}
	if b.msg.amqp != nil {
		if err := b.msg.amqp.Ready(); err != nil {
			return &health.Public{Text: err.Error()}
		}
	}
	return nil
}
