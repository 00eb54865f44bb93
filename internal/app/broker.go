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
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/httpapi"
	"github.com/sio-pso/siobroker/journal/archive"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/operator/metrics"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/routing"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/routing/routes"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
	"github.com/sio-pso/siobroker/signing/devpki"
	"github.com/sio-pso/siobroker/sqlite"
)

// DefaultConfigFile is the broker's configuration file, relative to the working directory.
const DefaultConfigFile = "configs/broker.yaml"

// Serve runs a broker on cfg until ctx ends: the debug listener if configured, the broker, and a
// reload of the routes, rights and maintenance windows on SIGHUP. It prints the endpoint to stdout
// once the broker is ready.
func Serve(ctx context.Context, cfg config.Broker, stdout io.Writer, logger *slog.Logger) error {
	_, stopDebug, err := serveDebug(cfg.Debug.PProf, logger)
	if err != nil {
		return err
	}
	defer stopDebug()
	b, err := Start(ctx, cfg, siobroker.SystemClock{}, logger)
	if err != nil {
		return err
	}
	// SIGHUP reloads the routes, rights and maintenance windows (see liveConfig.Reload).
	signal.Notify(b.hup, syscall.SIGHUP)
	defer signal.Stop(b.hup)
	fmt.Fprintf(stdout, "siobroker listening on %s%s (WSDL: %s%s?wsdl)\n", b.BaseURL(), cfg.Endpoint, b.BaseURL(), cfg.Endpoint)
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

// Broker is a started broker: the HTTP server, the watermill router carrying the demo
// adapters, and the store.
type Broker struct {
	server       *http.Server
	listener     net.Listener
	router       *message.Router
	pubsub       *gochannel.GoChannel
	amqp         *amqptransport.Transport
	db           *sqlite.DB
	tls          bool
	stop         context.CancelFunc
	done         chan struct{}  // closed when the router has stopped
	jobs         sync.WaitGroup // background jobs that use the store
	PKIDir       string
	closeJournal func()
	manifest     *devpki.Manifest // the development PKI's users and cases; nil with configured keys
	pipeline     *broker.Broker
	asyncStop    context.CancelFunc // stops the asynchronous worker
	asyncDone    chan struct{}      // closed when the asynchronous worker has stopped
	live         *liveConfig        // the reloadable configuration
	hup          chan os.Signal     // reload requests (SIGHUP)
	ops          *brokerOps         // the snapshot, metrics and readiness (serve_ops.go)
}

// AsyncPath is where the asynchronous channel is served: the same signed SendMessage as the
// synchronous endpoint, answered at once (see broker.Broker.Accept).
const AsyncPath = "/AsyncChannel/v10"

// Options are test hooks of startBroker.
type Options struct {
	NoAsyncWorker bool // accept asynchronous requests but never process them
}

// BaseURL is the scheme and address the broker listens on.
func (b *Broker) BaseURL() string {
	if b.tls {
		return "https://" + b.listener.Addr().String()
	}
	return "http://" + b.listener.Addr().String()
}

// Start wires the embedded default and starts serving. It returns once the broker is ready.
func Start(ctx context.Context, cfg config.Broker, clock siobroker.Clock, logger *slog.Logger) (*Broker, error) {
	return StartWith(ctx, cfg, clock, logger, Options{})
}

func StartWith(ctx context.Context, cfg config.Broker, clock siobroker.Clock, logger *slog.Logger, opts Options) (_ *Broker, err error) {
	ctx, stop := context.WithCancel(ctx)
	b := &Broker{stop: stop}
	logger = withRequestIDs(logger)
	defer func() {
		if err != nil {
			b.Close()
		}
	}()

	trustCfg, signer, err := loadKeys(cfg, clock, logger, b)
	if err != nil {
		return nil, err
	}
	trust, err := signing.LoadTrustStore(trustCfg)
	if err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	live, err := loadLiveConfig(cfg)
	if err != nil {
		return nil, err
	}
	caseRules, err := cases.NewRules(cfg.Cases, cases.WithClock(clock))
	if err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	registryNames, err := caseRegistries(caseRules)
	if err != nil {
		return nil, err
	}
	if b.db, err = sqlite.Open(ctx, cfg.DataDir); err != nil {
		return nil, err
	}
	journalStore, closeJournal, err := OpenJournal(ctx, cfg, b.db)
	if err != nil {
		return nil, err
	}
	b.closeJournal = closeJournal
	b.live = live
	if err := live.attachSchedule(ctx, maintenance.NewSchedule(b.db, clock)); err != nil {
		return nil, err
	}
	userRegistry := users.New(b.db, clock, logger.With("component", "registry"))
	certificates := users.NewCertificates(b.db, clock, logger.With("component", "certificates"))
	var demoUsers []devpki.User
	if b.manifest != nil {
		if err := seedDemoUsers(ctx, userRegistry, certificates, b.PKIDir, b.manifest, clock.Now()); err != nil {
			return nil, err
		}
		demoUsers = b.manifest.Users
	}
	// One verifier for every signed endpoint: the SOAP channels, reports and the dashboard.
	verifier := signing.NewVerifier(trust, signing.WithDirectory(certificates),
		signing.WithTimestampPolicy(signing.TimestampPolicy{Clock: clock, Skew: cfg.Signing.TimestampSkew,
			MaxAge: cfg.Replay.Window, Require: cfg.Signing.RequireTimestamp}))

	// watermill logs every handler start at Info; ninety-three of them drown the broker's own lines.
	wmLogger := watermill.NewSlogLoggerWithLevelMapping(logger.With("component", "watermill"),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	if b.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wmLogger); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	pub, sub, replyTopic, err := b.openTransport(ctx, cfg, registryNames, live.routes.Table().DeclaredQueues(), wmLogger)
	if err != nil {
		return nil, err
	}
	dispatcher := routing.NewDispatcher(pub, replyTopic, clock, logger.With("component", "dispatcher")).WithQueues(live.routes.Queue)
	dispatcher.AddHandlers(b.router, sub)
	tracker := incidents.NewTracker(incidents.Config{Threshold: cfg.Incidents.Threshold, CheckEvery: cfg.Incidents.CheckEvery},
		b.db, journalStore, clock, logger.With("component", "incidents"))
	dispatcher.TrackDelivery(incidents.DispatcherTracker{T: tracker})
	// An answer that comes after its service timed out is journaled as a late record before the
	// reply handler acknowledges it. The router stops before the journal closes.
	lateAnswers, err := broker.NewLateAnswers(broker.LateConfig{}, broker.LateDeps{
		Journal: journalStore, Jobs: b.db, Requests: journalStore, Rights: live.rights, Clock: clock,
		Logger: logger.With("component", "late-answers"),
	})
	if err != nil {
		return nil, err
	}
	dispatcher.OnLateAnswer(lateAnswers.Record)
	world := demo.Generate(cfg.Demo.Seed, cfg.Demo.People, cfg.Demo.Organisations)
	if err := writeDemoSubjects(cfg.DataDir, world); err != nil {
		return nil, err
	}
	inProcessServices := 0
	if cfg.Transport == "gochannel" || cfg.AMQP.InProcessAdapters {
		// The embedded default runs the demo adapters, and demo case registries holding the demo
		// users' cases (§5), in this process; with RabbitMQ, deployments run `siobroker adapter`
		// processes on the shared queues instead. GoChannel delivers every message to every
		// subscriber of its topic, so each topic has exactly one consumer here.
		adapter := routing.NewAdapterRuntime("demo", demoRouted(live.routes.Table(), demo.NewBackends(world), cfg.Transport, logger),
			pub, clock, logger.With("component", "adapter")).WithQueues(live.routes.Queue)
		if b.amqp != nil {
			adapter.WithDeadLetters(b.amqp.DeadLetterTopic())
		}
		adapter.AddHandlers(b.router, sub)
		inProcessServices = len(adapter.Services())
		for _, name := range registryNames {
			routing.NewRegistryRuntime(name, demo.NewCaseRegistry(name, demo.CasesOf(demoUsers)), pub, clock,
				logger.With("component", "registry-adapter", "registry", name)).AddHandlers(b.router, sub)
		}
	}
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		if err := b.router.Run(ctx); err != nil {
			logger.Error("router stopped", "error", err)
		}
	}()
	select {
	case <-b.router.Running():
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	transportReady := func() error {
		if b.amqp != nil {
			if err := b.amqp.Ready(); err != nil {
				return siobroker.Wrap(siobroker.CodeUnavailable, err,
					"the message transport (RabbitMQ) is not connected; the request was not accepted, retry later")
			}
		}
		return nil
	}
	if b.ops, err = b.startOperations(ctx, cfg, clock, logger, opsDeps{dispatcher, tracker, journalStore, signer}); err != nil {
		return nil, err
	}
	pipeline, err := broker.New(broker.Config{
		Limits:       soap.Limits{MaxBytes: cfg.HTTP.MaxBodyBytes, MaxDepth: cfg.HTTP.MaxDepth, MaxElements: cfg.HTTP.MaxElements},
		ReplayWindow: cfg.Replay.Window,
		Timeout:      live.routes.Timeout,
		AsyncTimeout: cfg.Routing.AsyncTimeout,
	}, broker.Deps{
		Verifier:       verifier,
		Signer:         signer,
		Replay:         b.db,
		Dispatcher:     dispatcher,
		Rights:         live.rights,
		Users:          userRegistry,
		Cases:          caseRules,
		Registry:       dispatcher,
		Journal:        journalStore,
		Clock:          clock,
		Logger:         logger.With("component", "broker"),
		NewID:          uuid.NewString,
		Async:          b.db,
		Maintenance:    live.maintenance,
		TransportReady: transportReady,
		Certificates:   certificates,
		ObserveStage:   metrics.ObserveStages(b.ops.Metrics, broker.Stages),
	})
	if err != nil {
		return nil, err
	}
	b.pipeline = pipeline
	reportsService := reports.New(reports.Config{ExportRoles: cfg.Reports.ExportRoles, VerifyClientCert: trust.VerifyChain},
		journalStore, userRegistry, clock, logger.With("component", "reports"))
	// Checked before every request, so only what a request cannot find out cheaply itself: a
	// store that fails refuses the request at its first write (the replay marks) with the same
	// SIO-UNAVAILABLE, and pinging it here cost a round trip per request.
	routerRunning := func(context.Context) error {
		if !b.router.IsRunning() {
			return errors.New("message router is not running")
		}
		return nil
	}
	ready := func(ctx context.Context) error {
		if err := routerRunning(ctx); err != nil {
			return err
		}
		return transportReady()
	}
	asyncHandler := httpapi.NewHandler(httpapi.Config{
		Endpoint:     AsyncPath,
		WSDL:         soap.WSDLAsyncChannel,
		WSDLAlso:     []string{soap.WSDLSyncChannel}, // the broker's own asynchronous variant
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Clock:        clock,
		Logger:       logger.With("component", "http-async"),
		// Status and fetch queries read the store only, and are answered while RabbitMQ is down;
		// the broker refuses new requests then (Deps.TransportReady).
		Ready:   routerRunning,
		Observe: b.ops.Metrics.ObserveRequests("async"),
	}, broker.AsyncPipeline{B: pipeline})
	handler := httpapi.NewHandler(httpapi.Config{
		Mount: b.ops.mount(map[string]http.Handler{
			AsyncPath: asyncHandler,
			reports.Path: reportsService.Handler(verifier.Verify, signer.Sign,
				soap.Limits{MaxBytes: cfg.HTTP.MaxBodyBytes, MaxDepth: cfg.HTTP.MaxDepth, MaxElements: cfg.HTTP.MaxElements}, clock),
			dashboard.Path: b.dashboardHandler(cfg, clock, logger, trust, verifier, signer, userRegistry, tracker, journalStore),
		}),
		Endpoint:     cfg.Endpoint,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Clock:        clock,
		Logger:       logger.With("component", "http"),
		Ready:        ready,
		Observe:      b.ops.Metrics.ObserveRequests("sync"),
	}, pipeline)

	srvCfg := httpapi.ServerConfig{
		Addr: cfg.Listen, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout,
		WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
	}
	if cfg.HTTP.TLS.Enabled {
		if srvCfg.TLS, err = httpapi.TLSConfig(cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile, cfg.HTTP.TLS.ClientAuth, trust.Roots()); err != nil {
			return nil, err
		}
		b.tls = true
	}
	b.server = httpapi.NewServer(srvCfg, handler, logger)
	if b.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	go func() {
		var err error
		if b.tls {
			err = b.server.ServeTLS(b.listener, "", "")
		} else {
			err = b.server.Serve(b.listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("HTTP server stopped", "error", err)
		}
	}()
	b.jobs.Go(func() {
		every(ctx, time.Hour, func(ctx context.Context) {
			if _, err := b.db.ForgetSeenBefore(ctx, clock.Now().Add(-cfg.Replay.IDRetention)); err != nil {
				logger.Warn("pruning seen messageIds failed", "error", err)
			}
		})
	})
	// §16 is applied by Authorize at the moment of a request too; the hourly sweep keeps the
	// registry's state true for operators in between.
	b.jobs.Go(func() {
		every(ctx, time.Hour, func(ctx context.Context) {
			blocked, err := userRegistry.BlockInactive(ctx)
			if err != nil {
				logger.Warn("blocking inactive users failed", "error", err)
			}
			if len(blocked) > 0 {
				logger.Info("blocked inactive users (§16)", "count", len(blocked))
			}
		})
	})
	b.jobs.Go(func() { tracker.Run(ctx) })
	// A window announced from the command line, or by another broker on the store, takes
	// effect here within this period.
	b.jobs.Go(func() {
		every(ctx, 15*time.Second, func(ctx context.Context) {
			if err := live.maintenance.Refresh(ctx); err != nil {
				logger.Warn("refreshing maintenance windows failed", "component", "maintenance", "error", err)
			}
		})
	})
	b.hup = make(chan os.Signal, 1)
	b.jobs.Go(func() { live.watch(ctx, b.hup, reloadPoll, logger.With("component", "reload")) })
	// The asynchronous worker resumes every ON_DELIVERY request at start. It has its own context,
	// which Close cancels before the router stops, so that no request in flight is answered with
	// the errors of a closing transport: an interrupted request stays ON_DELIVERY.
	if !opts.NoAsyncWorker {
		asyncCtx, asyncStop := context.WithCancel(ctx)
		b.asyncStop, b.asyncDone = asyncStop, make(chan struct{})
		worker := &broker.AsyncWorker{Broker: pipeline}
		b.jobs.Go(func() {
			defer close(b.asyncDone)
			worker.Run(asyncCtx)
		})
	}
	archiveDir := cfg.Journal.ArchiveDir
	if archiveDir == "" {
		archiveDir = filepath.Join(cfg.DataDir, "archive")
	}
	sealer, err := archive.NewSealer(archive.Config{Dir: archiveDir, MaxRecords: cfg.Journal.SegmentRecords, MaxBytes: cfg.Journal.SegmentBytes},
		journalStore, signer, clock)
	if err != nil {
		return nil, fmt.Errorf("journal archives: %w", err)
	}
	archiveLog := logger.With("component", "archive")
	b.jobs.Go(func() {
		every(ctx, cfg.Journal.SealEvery, func(ctx context.Context) { // every full segment, sealed (§38)
			manifests, err := sealer.SealFull(ctx)
			if err != nil {
				archiveLog.Error("sealing journal archives failed", "error", err)
			}
			for _, m := range manifests {
				archiveLog.Info("journal archive sealed", "archive", m.File, "first_seq", m.FirstSeq, "last_seq", m.LastSeq)
			}
		})
	})
	logger.Info("broker ready", "listen", b.listener.Addr().String(), "transport", cfg.Transport,
		"in_process_services", inProcessServices, "data", cfg.DataDir, "reply_topic", dispatcher.ReplyTopic())
	return b, nil
}

// loadKeys returns the trust configuration and the broker's signer: the configured files, or the
// development PKI in DATA/pki, created on first start.
func loadKeys(cfg config.Broker, clock siobroker.Clock, logger *slog.Logger, b *Broker) (signing.TrustConfig, *signing.Signer, error) {
	trustCfg := signing.TrustConfig{RootFiles: cfg.Trust.Roots, IntermediateFiles: cfg.Trust.Intermediates, CRLFiles: cfg.Trust.CRLs}
	certFile, keyFile := cfg.Signing.CertFile, cfg.Signing.KeyFile
	if len(trustCfg.RootFiles) == 0 || certFile == "" {
		b.PKIDir = filepath.Join(cfg.DataDir, "pki")
		m, created, err := devpki.Ensure(b.PKIDir, clock.Now())
		if err != nil {
			return trustCfg, nil, fmt.Errorf("development PKI: %w", err)
		}
		b.manifest = m
		if created {
			logger.Warn("created a development PKI: NOT FOR PRODUCTION", "dir", b.PKIDir, "users", len(m.Users))
		}
		if len(trustCfg.RootFiles) == 0 {
			trustCfg.RootFiles = []string{filepath.Join(b.PKIDir, m.CA)}
			if len(trustCfg.CRLFiles) == 0 {
				trustCfg.CRLFiles = []string{filepath.Join(b.PKIDir, m.CRL)}
			}
		}
		if certFile == "" {
			certFile, keyFile = filepath.Join(b.PKIDir, m.BrokerCert), filepath.Join(b.PKIDir, m.BrokerKey)
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
		b.pubsub = gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, logger)
		return b.pubsub, b.pubsub, routing.ReplyTopicPrefix + uuid.NewString(), nil
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
	b.amqp = t
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

// OpenJournal returns the configured journal: the embedded store's, or a PostgreSQL one that
// several brokers share.
func OpenJournal(ctx context.Context, cfg config.Broker, db *sqlite.DB) (siobroker.Journal, func(), error) {
	switch cfg.Journal.Driver {
	case "postgres":
		j, err := postgres.OpenJournal(ctx, cfg.Journal.DSN)
		if err != nil {
			return nil, nil, fmt.Errorf("journal: %w", err)
		}
		return j, j.Close, nil
	default:
		return db.Journal(), func() {}, nil
	}
}

// caseRegistries returns the distinct registries the configuration names, and refuses a
// configuration that leaves a non-exempt basis without one: §5 requires every basis but the
// administrative offence (§23) to be verified.
func caseRegistries(rules *cases.Rules) ([]string, error) {
	var names []string
	for b := siobroker.FirstBasis; b <= siobroker.LastBasis; b++ {
		name, ok := rules.Registry(b)
		switch {
		case cases.Exempt(b):
		case !ok:
			return nil, fmt.Errorf("cases.registries: basis %d has no case registry; §5 of the Rules requires its verification", b)
		case !slices.Contains(names, name):
			names = append(names, name)
		}
	}
	return names, nil
}

// Close stops taking requests, lets those in flight finish, then stops the router and the store.
func (b *Broker) Close() error {
	var errs []error
	if b.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, b.server.Shutdown(ctx))
		cancel()
	} else if b.listener != nil {
		errs = append(errs, b.listener.Close())
	}
	if b.asyncStop != nil {
		b.asyncStop()
		<-b.asyncDone
	}
	if b.pipeline != nil {
		b.pipeline.Shutdown() // the waits for late services; their requests resume at the next start
	}
	if b.router != nil {
		errs = append(errs, b.router.Close())
		if b.done != nil {
			select {
			case <-b.done:
			case <-time.After(15 * time.Second):
			}
		}
	}
	if b.amqp != nil {
		errs = append(errs, b.amqp.Close())
	}
	if b.pubsub != nil {
		errs = append(errs, b.pubsub.Close())
	}
	b.stop()
	b.jobs.Wait() // the store must outlive every job that writes to it
	if b.closeJournal != nil {
		b.closeJournal()
	}
	if b.db != nil {
		errs = append(errs, b.db.Close())
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

// every runs f once per period, the first time a period from now, until ctx ends: the broker's
// background jobs (pruning, sealing, sweeps, refreshes).
func every(ctx context.Context, period time.Duration, f func(ctx context.Context)) {
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			f(ctx)
		}
	}
}

// Store is the broker's embedded store.
func (b *Broker) Store() *sqlite.DB { return b.db }

// Reload reloads the routes, rights and maintenance windows from their files, as SIGHUP does,
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

// DecideService decides service n under basis bs with the rights in force (Appendix 2).
func (b *Broker) DecideService(bs siobroker.Basis, n int, article string) siobroker.Decision {
	return b.live.rights.Table().DecideService(bs, n, article)
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
	if b.amqp == nil {
		return nil
	}
	return b.amqp.Close()
}
