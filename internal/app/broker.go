package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/tracing/provider"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/routing"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/routing/routes"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// DefaultConfigFile is the broker's configuration file, relative to the working directory.
const DefaultConfigFile = "configs/broker.yaml"

// Serve runs a broker on cfg until ctx ends: the broker with its operator's listener, and a
// reload of the CRLs, routes, rights and maintenance windows on SIGHUP. It prints the endpoint,
// the WSDL's address and the operator's endpoints to stdout once the broker is ready.
func Serve(ctx context.Context, cfg config.Broker, stdout io.Writer, logger *slog.Logger) error {
	b, err := Start(ctx, cfg, siobroker.SystemClock{}, logger)
	if err != nil {
		return err
	}
	// SIGHUP reloads the CRLs, routes, rights and maintenance windows (see liveConfig.Reload).
	signal.Notify(b.hup, syscall.SIGHUP)
	defer signal.Stop(b.hup)
	fmt.Fprintf(stdout, "siobroker listening on %s%s (WSDL: %s%s?wsdl, service address %s%s)\n",
		b.BaseURL(), cfg.Endpoint, b.BaseURL(), cfg.Endpoint, b.PublicURL(), cfg.Endpoint)
	debug := ""
	if cfg.Debug.PProf {
		debug = ", " + PProfPath + ", " + ExpvarPath
	}
	fmt.Fprintf(stdout, "operator endpoints on %s (%s, %s, %s%s)\n", b.OperatorURL(), MetricsPath, ReadyzPath, HealthzPath, debug)
	<-ctx.Done()
	logger.Info("shutting down")
	if err := b.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// NewLogger returns the broker's logger on w, in the configured format and level, with times in
// Astana time.
func NewLogger(w io.Writer, cfg config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logTimeInAstana}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Broker is a started broker: the HTTP server, the watermill router carrying the routes (and, on
// the embedded default, the demo adapters), the store and the background jobs.
type Broker struct {
	stop         context.CancelFunc
	closing      atomic.Bool    // Close has begun: what stops now is no outage
	jobs         sync.WaitGroup // background jobs that use the store
	pki          devPKI         // the development PKI, when the configuration names no keys
	db           *sqlite.DB
	closeJournal func()
	live         *liveConfig    // the reloadable configuration
	revocation   liveRevocation // CRLs fetched from distribution points, OCSP (revocation.go)
	hup          chan os.Signal // reload requests (SIGHUP)
	msg          messaging      // the router and the transport under it
	pipeline     *broker.Broker
	indexHints   *reports.QueryHints // the queries of journaled requests, for the request index
	async        asyncWorker         // the worker of the asynchronous channel
	ops          *brokerOps          // the snapshot, metrics and readiness (serve_ops.go)
	web          webServer
	operator     operatorServer     // metrics, readiness and diagnostics (operator_server.go)
	tracing      *provider.Provider // the configuration's tracing; nil when Options gave one
}

// devPKI is the development PKI of the embedded default, created on first start in DATA/pki.
type devPKI struct {
	dir      string
	manifest *devpki.Manifest // its users and their cases; nil with configured keys
}

// messaging is the watermill router and the transport it runs on: GoChannel in process, or
// RabbitMQ.
type messaging struct {
	router *message.Router
	pubsub *gochannel.GoChannel     // the in-process transport; nil on RabbitMQ
	amqp   *amqptransport.Transport // RabbitMQ; nil in process
	done   chan struct{}            // closed when the router has stopped
}

// asyncWorker is the running worker of the asynchronous channel.
type asyncWorker struct {
	stop context.CancelFunc // stops it
	done chan struct{}      // closed when it has stopped
}

// webServer is the HTTP server of the broker's public faces: the channels, reports and the
// dashboard.
type webServer struct {
	server    *http.Server
	listener  net.Listener
	tls       bool
	publicURL string // the address the WSDLs give: http.public_url, or derived from the listener
}

// PKIDir is the directory of the development PKI; "" when the configuration names the keys.
func (b *Broker) PKIDir() string { return b.pki.dir }

// AsyncPath is where the asynchronous channel is served: the same signed SendMessage as the
// synchronous endpoint, answered at once (see broker.Broker.Accept).
const AsyncPath = "/AsyncChannel/v10"

// Options are test hooks of startBroker.
type Options struct {
	NoAsyncWorker bool // accept asynchronous requests but never process them
	// TracerProvider replaces the one of the configuration's tracing section (an in-memory
	// exporter's, in a test).
	TracerProvider trace.TracerProvider
}

// PublicURL is the address the WSDLs give clients: http.public_url, or the scheme and address
// derived from listen (publicURLOf).
func (b *Broker) PublicURL() string { return b.web.publicURL }

// BaseURL is the scheme and address the broker listens on.
func (b *Broker) BaseURL() string {
	if b.web.tls {
		return "https://" + b.web.listener.Addr().String()
	}
	return "http://" + b.web.listener.Addr().String()
}

// Start wires the embedded default and starts serving. It returns once the broker is ready.
func Start(ctx context.Context, cfg config.Broker, clock siobroker.Clock, logger *slog.Logger) (*Broker, error) {
	return StartWith(ctx, cfg, clock, logger, Options{})
}

// loadKeys returns the trust configuration and the broker's signer: the configured files, or,
// with --dev (cfg.Dev) alone, the development PKI in DATA/pki, created on first start, for what
// the configuration leaves empty.
func loadKeys(cfg config.Broker, clock siobroker.Clock, logger *slog.Logger, b *Broker) (signing.TrustConfig, *signing.Signer, error) {
	trustCfg := signing.TrustConfig{RootFiles: cfg.Trust.Roots, IntermediateFiles: cfg.Trust.Intermediates, CRLFiles: cfg.Trust.CRLs,
		CRLStaleGrace: cfg.Trust.StaleGrace()}
	certFile, keyFile := cfg.Signing.CertFile, cfg.Signing.KeyFile
	if missing := devPKIFor(cfg); len(missing) > 0 {
		if !cfg.Dev { // CheckStart refused this already; never fall back silently
			return trustCfg, nil, CheckStart(cfg)
		}
		b.pki.dir = filepath.Join(cfg.DataDir, "pki")
		m, created, err := devpki.Ensure(b.pki.dir, clock.Now())
		if err != nil {
			return trustCfg, nil, fmt.Errorf("development PKI: %w", err)
		}
		b.pki.manifest = m
		if created {
			logger.Warn("created a development PKI: NOT FOR PRODUCTION", "dir", b.pki.dir, "users", len(m.Users))
		}
		logger.Warn("--dev: the development PKI stands in for the configuration: NOT FOR PRODUCTION", "for", strings.Join(missing, ", "),
			"dir", b.pki.dir)
		if len(trustCfg.RootFiles) == 0 {
			trustCfg.RootFiles = []string{filepath.Join(b.pki.dir, m.CA)}
			if len(trustCfg.CRLFiles) == 0 {
				trustCfg.CRLFiles = []string{filepath.Join(b.pki.dir, m.CRL)}
			}
		}
		if certFile == "" {
			certFile, keyFile = filepath.Join(b.pki.dir, m.BrokerCert), filepath.Join(b.pki.dir, m.BrokerKey)
		}
	}
	signer, err := signing.LoadSigner(certFile, keyFile)
	if err != nil {
		return trustCfg, nil, fmt.Errorf("broker signing key: %w", err)
	}
	return trustCfg, signer.WithClock(clock), nil
}

// openTransport returns the publisher, subscriber and reply topic of the configured transport:
// the in-process GoChannel, or RabbitMQ with its topology declared first (publishing to a queue
// that does not exist would lose the message).
func (b *Broker) openTransport(ctx context.Context, cfg config.Broker, registries, queues []string, logger watermill.LoggerAdapter) (message.Publisher, message.Subscriber, string, error) {
	if cfg.Transport != "amqp" {
		b.msg.pubsub = gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, logger)
		return b.msg.pubsub, b.msg.pubsub, routing.ReplyTopicPrefix + uuid.NewString(), nil
	}
	instance := cfg.AMQP.Instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = host + "-" + strings.ReplaceAll(cfg.Listen, ":", "-")
	}
	acfg := AMQPConfig(cfg.AMQP, instance, registries)
	for _, q := range queues {
		if !strings.HasPrefix(q, "sio.service.") {
			acfg.Queues = append(acfg.Queues, q)
		}
	}
	declared, err := amqptransport.DeclareTopology(ctx, acfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("declare RabbitMQ topology: %w", err)
	}
	for _, w := range declared.Warnings {
		logger.Error("RabbitMQ puts messages at risk", errors.New(w), watermill.LogFields{"rabbitmq": declared.ServerVersion})
	}
	t, err := amqptransport.NewBrokerTransport(ctx, acfg, logger)
	if err != nil {
		return nil, nil, "", fmt.Errorf("RabbitMQ: %w", err)
	}
	b.msg.amqp = t
	return t.Publisher(), t.Subscriber(), t.ReplyTopic(), nil
}

// AMQPConfig is the transport configuration for every service of Appendix 2 and the given case
// registries.
func AMQPConfig(c config.AMQP, instance string, registries []string) amqptransport.Config {
	services := make([]int, 0, siobroker.LastService)
	for n := siobroker.FirstService; n <= siobroker.LastService; n++ {
		services = append(services, n)
	}
	return amqptransport.Config{
		URL: c.URL, Instance: instance, Services: services, Registries: registries,
		Prefetch: c.Prefetch, Concurrency: c.Concurrency, ClassicQueues: c.ClassicQueues, DeliveryLimit: c.DeliveryLimit,
		Prefix: c.Prefix, ReconnectMax: c.ReconnectMax,
	}
}

// StoreOptions are the embedded store's options the configuration sets (section store): every
// process opening the store (the broker, the commands) opens it with them.
func StoreOptions(cfg config.Broker) sqlite.Options {
	return sqlite.Options{Synchronous: sqlite.Synchronous(cfg.Store.Synchronous), WriteTimeout: cfg.Store.WriteTimeout}
}

// OpenStore opens the embedded store in the configuration's data directory with StoreOptions.
func OpenStore(ctx context.Context, cfg config.Broker) (*sqlite.DB, error) {
	return sqlite.OpenWith(ctx, cfg.DataDir, StoreOptions(cfg))
}

// OpenJournal returns the configured journal: the embedded store's, or a PostgreSQL one that
// several brokers share, whose appends are bounded by the same store.write_timeout.
func OpenJournal(ctx context.Context, cfg config.Broker, db *sqlite.DB) (siobroker.Journal, func(), error) {
	switch cfg.Journal.Driver {
	case "postgres":
		j, err := postgres.OpenJournalWith(ctx, cfg.Journal.DSN, postgres.JournalOptions{WriteTimeout: cfg.Store.WriteTimeout})
		if err != nil {
			return nil, nil, fmt.Errorf("journal: %w", err)
		}
		return j, j.Close, nil
	default:
		return db.Journal(), func() {}, nil
	}
}

// RequestIndexOf is the request index of reports beside journal j: in the journal's PostgreSQL
// database, which every broker sharing the journal shares, or in the embedded store db.
func RequestIndexOf(j siobroker.Journal, db *sqlite.DB) siobroker.RequestIndex {
	if c, ok := j.(*journal.Counted); ok {
		j = c.Unwrap() // the broker's journal, counted for the metrics: the index is the store's
	}
	if pj, ok := j.(*postgres.Journal); ok {
		return pj.RequestIndex()
	}
	return db
}

// NewIndexer is the indexer that folds journal j into its request index (RequestIndexOf), with
// the signers' departments from the registry's history in db, and the queries of the requests
// this process journals from hints (nil: it reads every journaled request).
func NewIndexer(cfg config.Broker, j siobroker.Journal, db *sqlite.DB, hints *reports.QueryHints, logger *slog.Logger) (*reports.Indexer, error) {
	return reports.NewIndexer(reports.IndexerConfig{Limits: limitsOf(cfg), PacedShare: backgroundShare, Hints: hints},
		j, RequestIndexOf(j, db), db, logger.With("component", "request-index"))
}

// IndexHints are the queries the broker hands its request index (for tests and diagnostics:
// how many the index took).
func (b *Broker) IndexHints() *reports.QueryHints { return b.indexHints }

// caseRegistries returns the distinct registries the configuration names, and refuses a
// configuration that leaves a non-exempt basis without one: §5 requires every basis but the
// administrative offence (§23) to be verified.
func caseRegistries(rules *cases.Rules, table *routes.Table) ([]string, error) {
	var names []string
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		name, ok := rules.Registry(b)
		switch {
		case cases.Exempt(b):
		case !ok:
			return nil, fmt.Errorf("cases.registries: basis %d has no case registry; §5 of the Rules requires its verification", b)
		case table.RegistryAdapter(name) == "":
			// Its checks could be authenticated for no adapter: every request under the basis
			// would wait out the check's timeout and be refused.
			return nil, fmt.Errorf("cases.registries: basis %d is checked by case registry %s, which has no route in %s; add `%s: {adapter: NAME}` under registries",
				b, name, table.Path, name)
		case !slices.Contains(names, name):
			names = append(names, name)
		}
	}
	return names, nil
}

// Close stops taking requests, lets those in flight finish, then stops the router and the store.
func (b *Broker) Close() error {
	b.closing.Store(true)
	var errs []error
	if b.web.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, b.web.server.Shutdown(ctx))
		cancel()
	} else if b.web.listener != nil {
		errs = append(errs, b.web.listener.Close())
	}
	errs = append(errs, b.closeOperator())
	if b.async.stop != nil {
		b.async.stop()
		<-b.async.done
	}
	if b.pipeline != nil {
		b.pipeline.Shutdown() // the waits for late services; their requests resume at the next start
	}
	if b.msg.router != nil {
		errs = append(errs, b.msg.router.Close())
		if b.msg.done != nil {
			select {
			case <-b.msg.done:
			case <-time.After(15 * time.Second):
			}
		}
	}
	if b.msg.amqp != nil {
		errs = append(errs, b.msg.amqp.Close())
	}
	if b.msg.pubsub != nil {
		errs = append(errs, b.msg.pubsub.Close())
	}
	b.stop()
	b.jobs.Wait() // the store must outlive every job that writes to it
	if b.closeJournal != nil {
		b.closeJournal()
	}
	if b.db != nil {
		errs = append(errs, b.db.Close())
	}
	if b.tracing != nil {
		// Last: the spans of everything above, the requests drained by the server's shutdown
		// included, are exported before the process ends.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, b.tracing.Shutdown(ctx))
		cancel()
	}
	return errors.Join(errs...)
}

// demoRouted keeps the demo backends of the services the routing table gives to the demo
// adapter. The others are answered by `siobroker adapter` processes over RabbitMQ; on the
// in-process transport nothing else can reach them, so each such service is named in a warning:
// its requests will time out.
func demoRouted(tbl *routes.Table, all map[int]adapters.Backend, transport string, logger *slog.Logger) map[int]adapters.Backend {
	out := make(map[int]adapters.Backend, len(all))
	for n, b := range all {
		r, ok := tbl.Route(n)
		if ok && r.Adapter == "demo" && r.Backend == "demo" {
			out[n] = b
			continue
		}
		if transport != "amqp" {
			logger.Warn("service routed to an adapter that cannot run on the in-process transport; its requests will time out",
				"service", n, "adapter", r.Adapter, "backend", r.Backend, "transport", transport)
		}
	}
	return out
}

// Store is the broker's embedded store.
func (b *Broker) Store() *sqlite.DB { return b.db }

// Reload reloads the CRLs, routes, rights and maintenance windows from their files, as SIGHUP does,
// and returns why it refused them; why says what asked for it, for the log.
func (b *Broker) Reload(ctx context.Context, why string, logger *slog.Logger) error {
	return b.live.Reload(ctx, why, logger)
}

// RequestReload asks the reload watcher for a reload, as SIGHUP does, and does not wait for it.
func (b *Broker) RequestReload() {
	select {
	case b.hup <- syscall.SIGHUP:
	default: // one is pending already
	}
}

// RouteTimeout is the timeout of service n under the routing table in force.
func (b *Broker) RouteTimeout(n int) time.Duration { return b.live.routes.Timeout(n) }

// Routed reports whether service n has a route in the routing table in force.
func (b *Broker) Routed(n int) bool {
	_, ok := b.live.routes.Table().Route(n)
	return ok
}

// DecideService decides service n under basis bs, for a case of qualification q, with the rights
// in force (Appendix 2).
func (b *Broker) DecideService(bs siobroker.Basis, n int, q siobroker.Qualification) siobroker.Decision {
	return b.live.rights.Table().DecideService(bs, n, q)
}

// Maintenance is the broker's maintenance schedule.
func (b *Broker) Maintenance() *maintenance.Schedule { return b.live.maintenance }

// ServiceStates is the state of every service's route, as the dashboard and /metrics show it.
func (b *Broker) ServiceStates(ctx context.Context) ([]health.ServiceState, error) {
	return b.ops.Monitor.Services(ctx)
}

// CloseTransport closes the broker's connection to RabbitMQ, as when RabbitMQ stops: requests are
// refused SIO-UNAVAILABLE until it reconnects. It does nothing on the in-process transport. Fault
// tests use it.
func (b *Broker) CloseTransport() error {
	if b.msg.amqp == nil {
		return nil
	}
	return b.msg.amqp.Close()
}
