package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/access/cases"
	"github.com/sio-pso/siobroker/access/users"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/tracing/provider"
	"github.com/sio-pso/siobroker/journal"
	"github.com/sio-pso/siobroker/operator/incidents"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/operator/metrics"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/schemas/soap"
	"github.com/sio-pso/siobroker/signing"
)

// parts are what StartWith builds, phase by phase, for the phases after it.
type parts struct {
	cfg    config.Broker
	clock  siobroker.Clock
	logger *slog.Logger

	signer        *signing.Signer
	trust         *signing.TrustStore
	verifier      *signing.Verifier // one for every signed endpoint: the channels, reports, the dashboard
	caseRules     *cases.Rules
	registries    []string          // the case registries the configuration names
	journal       siobroker.Journal // journalWrites, the store's or PostgreSQL's counted
	journalWrites *journal.Counted
	indexer       *reports.Indexer // the request index of reports, beside the journal
	replay        replay           // the replay marks of requests, logins and report requests, where the journal is
	users         *users.Registry
	certificates  *users.Certificates

	transportAuth     *msgauth.Broker // authenticates the messages to and from the adapters
	dispatcher        *routing.Dispatcher
	tracker           *incidents.Tracker
	plans             *incidents.Plans // the emergency action plans; nil without a file
	late              *broker.LateAnswers
	inProcessServices int // services answered by demo adapters in this process

	tracer trace.TracerProvider // the spans of requests, service legs and the in-process adapters
}

// StartWith is Start with test hooks. It starts the broker in phases, each of which needs the
// ones before it: the keys and stores, the message routing, the request pipeline, the HTTP
// server, then the background jobs. On error everything started is closed again.
func StartWith(ctx context.Context, cfg config.Broker, clock siobroker.Clock, logger *slog.Logger, opts Options) (_ *Broker, err error) {
	ctx, stop := context.WithCancel(ctx)
	b := &Broker{stop: stop}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	p := &parts{cfg: cfg, clock: clock, logger: withRequestIDs(logger)}
	if err := CheckStart(cfg); err != nil {
		return nil, err
	}
	if p.tracer = opts.TracerProvider; p.tracer == nil {
		if b.tracing, err = provider.New(ctx, cfg.Tracing, provider.Options{InstanceID: cfg.AMQP.Instance}, logger.With("component", "tracing")); err != nil {
			return nil, err
		}
		p.tracer = b.tracing
		if cfg.Tracing.Enabled() {
			logger.Info("tracing: spans exported over OTLP/HTTP", "endpoint", cfg.Tracing.OTLPEndpoint, "sample_ratio", cfg.Tracing.SampleRatio)
		}
	}
	if err := b.openStores(ctx, p); err != nil {
		return nil, err
	}
	if err := b.startRouting(ctx, p); err != nil {
		return nil, err
	}
	if err := b.startPipeline(ctx, p); err != nil {
		return nil, err
	}
	if err := b.startHTTP(p); err != nil {
		return nil, err
	}
	if err := b.startJobs(ctx, p, opts); err != nil {
		return nil, err
	}
	p.logger.Info("broker ready", "listen", b.web.listener.Addr().String(), "operator", b.operator.listener.Addr().String(), "transport", cfg.Transport,
		"in_process_services", p.inProcessServices, "data", cfg.DataDir, "reply_topic", p.dispatcher.ReplyTopic())
	return b, nil
}

// openStores loads the keys and the trust store, the reloadable configuration and the case rules,
// opens the store and the journal, and builds the user registry (seeding the demo users of the
// development PKI, under --dev only) and the signature verifier.
func (b *Broker) openStores(ctx context.Context, p *parts) error {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	if err := privateDataDir(cfg, logger); err != nil {
		return err
	}
	trustCfg, signer, err := loadKeys(cfg, clock, logger, b)
	if err != nil {
		return err
	}
	p.signer = signer
	ocsp, policy, err := newOCSP(cfg, clock, logger)
	if err != nil {
		return err
	}
	if ocsp != nil {
		trustCfg.OCSP = ocsp
	}
	trustCfg.OCSPPolicy = policy
	if p.transportAuth, err = loadTransportKeys(cfg, clock, logger); err != nil {
		return err
	}
	if p.trust, err = signing.LoadTrustStore(trustCfg); err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	if err := b.startRevocation(ctx, cfg, p.trust, ocsp, clock, logger); err != nil {
		return err
	}
	if b.live, err = loadLiveConfig(cfg, clock); err != nil {
		return err
	}
	b.live.attachTrust(p.trust)
	if p.caseRules, err = cases.NewRules(cfg.Cases, clock); err != nil {
		return fmt.Errorf("cases: %w", err)
	}
	if p.registries, err = caseRegistries(p.caseRules, b.live.routes.Table()); err != nil {
		return err
	}
	if b.db, err = OpenStore(ctx, cfg); err != nil {
		return err
	}
	if err := CheckRolesEdition(ctx, b.db, b.live.rights.Table().Edition(), cfg.Rights, clock); err != nil {
		return err
	}
	if p.journal, b.closeJournal, err = OpenJournal(ctx, cfg, b.db); err != nil {
		return err
	}
	if p.replay, err = replayMarks(ctx, p.journal, b.db, p.logger); err != nil {
		return err
	}
	// Every part writes through the count, for the alert on a journal that stops taking records;
	// replayMarks needed the journal's own type.
	p.journalWrites = journal.Count(p.journal)
	p.journal = p.journalWrites
	b.indexHints = reports.NewQueryHints(0, 0)
	if p.indexer, err = NewIndexer(cfg, p.journal, b.db, b.indexHints, logger); err != nil {
		return err
	}
	// Emergency windows are recorded in the journal of emergencies by the broker itself.
	emergencies, err := incidents.NewService(b.db, p.journal, clock, "siobroker")
	if err != nil {
		return err
	}
	if err := b.live.attachSchedule(ctx, maintenance.NewSchedule(b.db, clock,
		maintenance.Policy{MinNotice: cfg.MaintenanceMinNotice, Emergencies: emergencies})); err != nil {
		return err
	}
	p.users = users.New(b.db, clock, logger.With("component", "registry"))
	p.certificates = users.NewCertificates(b.db, clock, logger.With("component", "certificates"))
	if b.pki.manifest != nil {
		if err := seedDemoUsers(ctx, p.users, p.certificates, b.pki.dir, b.pki.manifest, clock.Now()); err != nil {
			return err
		}
	}
	p.verifier, err = signing.NewVerifier(signing.VerifierConfig{
		Trust: p.trust, Directory: p.certificates,
		Timestamps: signing.TimestampPolicy{Clock: clock, Skew: cfg.Signing.TimestampSkew,
			MaxAge: cfg.Replay.Window, Require: cfg.Signing.RequireTimestamp},
		Usage: signing.SignerUsage{SigningEKUs: cfg.Trust.SigningEKUs, RequireNonRepudiation: cfg.Trust.RequireNonRepudiation},
	})
	return err
}

// startRouting opens the transport, adds the dispatcher (startDispatcher) and (on the embedded
// default) the demo adapters and case registries to the router; then it runs the router and
// waits until it is running.
func (b *Broker) startRouting(ctx context.Context, p *parts) error {
	cfg, logger := p.cfg, p.logger
	wmLogger := routing.WatermillLogger(logger.With("component", "watermill"))
	var err error
	if b.msg.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wmLogger); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	pub, sub, replyTopic, err := b.openTransport(ctx, cfg, p.registries, b.live.routes.Table().DeclaredQueues(), wmLogger)
	if err != nil {
		return err
	}
	if err := b.startDispatcher(p, pub, replyTopic); err != nil {
		return err
	}
	p.dispatcher.AddHandlers(b.msg.router, sub)
	if err := b.addDemoAdapters(p, pub, sub); err != nil {
		return err
	}
	b.msg.done = make(chan struct{})
	go func() {
		defer close(b.msg.done)
		if err := b.msg.router.Run(ctx); err != nil {
			logger.Error("router stopped", "error", err)
		}
	}()
	select {
	case <-b.msg.router.Running():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startDispatcher builds the dispatcher with what it reports to: the incident tracker, the
// journal of late answers and the metrics; and the snapshot of the services, which reads its
// counters. The metrics are built first and the snapshot last (brokerOps.services); both go to
// b.ops, which startOperations completes.
func (b *Broker) startDispatcher(p *parts, pub message.Publisher, replyTopic string) error {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	var err error
	if p.tracker, err = incidents.NewTracker(incidents.Config{Threshold: cfg.Incidents.Threshold, CheckEvery: cfg.Incidents.CheckEvery},
		b.db, p.journal, clock, logger.With("component", "incidents")); err != nil {
		return err
	}
	// An answer that comes after its service timed out is journaled as a late record before the
	// reply handler acknowledges it. The router stops before the journal closes.
	if p.plans, err = loadEmergencyPlans(cfg, logger.With("component", "incidents")); err != nil {
		return err
	}
	lateAnswers, err := broker.NewLateAnswers(broker.LateConfig{}, broker.LateDeps{
		Journal: p.tracker.WatchJournal(p.journal), Answers: b.db, Jobs: b.db, Requests: p.journal, Rights: b.live.rights, Clock: clock,
		Logger: logger.With("component", "late-answers"),
	})
	if err != nil {
		return err
	}
	p.late = lateAnswers
	b.ops = &brokerOps{}
	b.ops.Metrics = b.newMetrics(p, b.ops.services)
	b.live.observeCRL = b.ops.Metrics.ObserveCRLReload // set before the reload watcher starts
	if p.dispatcher, err = routing.NewDispatcher(routing.DispatcherConfig{
		Publisher: pub, ReplyTopic: replyTopic, Clock: clock, Logger: logger.With("component", "dispatcher"),
		QueueOf:   b.live.routes.Queue,
		Auth:      p.transportAuth,
		AdapterOf: b.live.routes.Adapter,
		// The registries' routes are read at every check: a reload may move a registry to
		// another adapter, as it may a service.
		RegistryAdapterOf: b.live.routes.RegistryAdapter,
		ObserveRefusedAnswer: func(_ int, reason msgauth.Reason) {
			b.ops.Metrics.ObserveTransportRefusal("broker", string(reason))
		},
		Tracker:       incidents.DispatcherTracker{T: p.tracker},
		ObserveAnswer: b.ops.Metrics.ObserveAnswer,
		OnLateAnswer:  lateAnswers.Record,
		// Every answer is in the store before RabbitMQ is told it arrived: a broker killed at
		// any instant loses none, and a resumed request is completed from them.
		Answers:        b.db,
		DeadLetters:    b.deadLetterTopic(),
		TracerProvider: p.tracer,
	}); err != nil {
		return err
	}
	b.ops.Monitor, err = b.newMonitor(p.dispatcher, p.tracker, clock)
	return err
}

// addDemoAdapters writes the demo world's subjects for the README's examples and, on the embedded
// default, runs the demo adapters and demo case registries holding the demo users' cases (§5) in
// this process. With RabbitMQ, deployments run `siobroker adapter` processes on the shared queues
// instead; with amqp.in_process_adapters the services and registries routed to demo run here. GoChannel delivers every message to every subscriber of its topic, so each topic has
// exactly one consumer here.
func (b *Broker) addDemoAdapters(p *parts, pub message.Publisher, sub message.Subscriber) error {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	world := demo.Generate(cfg.Demo.Seed, cfg.Demo.People, cfg.Demo.Organisations)
	if err := writeDemoSubjects(cfg.DataDir, world); err != nil {
		return err
	}
	if cfg.Transport != "gochannel" && !cfg.AMQP.InProcessAdapters {
		return nil
	}
	keys, err := inProcessAdapterKeys(p.transportAuth, "demo")
	if err != nil {
		return err
	}
	acfg := routing.AdapterConfig{Name: "demo", Backends: demoRouted(b.live.routes.Table(), demo.NewBackends(world), cfg.Transport, logger),
		Publisher: pub, Clock: clock, Logger: logger.With("component", "adapter"), QueueOf: b.live.routes.Queue,
		Auth: keys, ObserveRefusal: func(reason msgauth.Reason) { b.ops.Metrics.ObserveTransportRefusal("adapter", string(reason)) },
		TracerProvider: p.tracer}
	if b.msg.amqp != nil {
		acfg.DeadLetters = b.msg.amqp.DeadLetterTopic()
	}
	adapter, err := routing.NewAdapterRuntime(acfg)
	if err != nil {
		return err
	}
	adapter.AddHandlers(b.msg.router, sub)
	p.inProcessServices = len(adapter.Services())
	var demoCases map[string][]demo.Case
	if b.pki.manifest != nil {
		demoCases = demo.CasesOf(b.pki.manifest.Users)
	}
	for _, name := range p.registries {
		to := b.live.routes.Table().RegistryAdapter(name)
		if to != "demo" {
			if cfg.Transport == "amqp" {
				// Its adapter process answers it on RabbitMQ (a registry of the adapter's
				// registries section, say from PostgreSQL): a demo one here would take its checks.
				continue
			}
			logger.Warn("case registry routed to an adapter that cannot run on the in-process transport; the demo registry answers it",
				"registry", name, "adapter", to, "transport", cfg.Transport)
		}
		// The keys of the adapter the registry is routed to, as an adapter process of that name
		// would hold them.
		regKeys, err := inProcessAdapterKeys(p.transportAuth, to)
		if err != nil {
			return err
		}
		rcfg := routing.RegistryConfig{Name: name, Registry: demo.NewCaseRegistry(name, demoCases),
			Publisher: pub, Clock: clock, Logger: logger.With("component", "registry-adapter", "registry", name), Auth: regKeys,
			ObserveRefusal: func(reason msgauth.Reason) { b.ops.Metrics.ObserveTransportRefusal("adapter", string(reason)) },
			TracerProvider: p.tracer}
		if b.msg.amqp != nil {
			rcfg.DeadLetters = b.msg.amqp.DeadLetterTopic()
		}
		registry, err := routing.NewRegistryRuntime(rcfg)
		if err != nil {
			return err
		}
		registry.AddHandlers(b.msg.router, sub)
	}
	return nil
}

// startPipeline completes the operations (the readiness checks, the certificate's warning) and
// builds the request pipeline over everything before it.
func (b *Broker) startPipeline(ctx context.Context, p *parts) error {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	var err error
	if err = b.startOperations(ctx, cfg, clock, logger, opsDeps{p.journal, p.signer}); err != nil {
		return err
	}
	b.pipeline, err = broker.New(broker.Config{
		Limits:       limitsOf(cfg),
		ReplayWindow: cfg.Replay.Window,
		Timeout:      b.live.routes.Timeout,
		AsyncTimeout: cfg.Routing.AsyncTimeout,
		Unauthenticated: broker.UnauthenticatedLimits{
			PrefixBytes:        cfg.Journal.UnauthenticatedRefusals.PrefixBytes,
			PerClientPerMinute: cfg.Journal.UnauthenticatedRefusals.PerClientPerMinute,
			TotalPerMinute:     cfg.Journal.UnauthenticatedRefusals.TotalPerMinute,
		},
		PerSigner: signerLimits(p),
	}, broker.Deps{
		Verifier: p.verifier,
		// The reply signer and the journal report every use to the tracker, which opens an
		// incident when they fail and closes it when they work again (faults.go).
		Signer:         watchedSigner{Signer: p.signer, report: p.tracker.Watch(incidents.FaultSigning)},
		Replay:         watchedReplay{ReplayGuard: p.replay.requests, report: p.tracker.Watch(incidents.FaultJournal)},
		Dispatcher:     p.dispatcher,
		Rights:         b.live.rights,
		Users:          p.users,
		Cases:          p.caseRules,
		Registry:       p.dispatcher,
		Journal:        p.tracker.WatchJournal(p.journal),
		Clock:          clock,
		Logger:         logger.With("component", "broker"),
		NewID:          uuid.NewString,
		Async:          p.replay.async,
		Maintenance:    b.live.maintenance,
		TransportReady: b.acceptsRequests,
		Answers:        b.db,
		Late:           p.late.Record,
		Together:       watchTransactor(p.replay.together, p.tracker.Watch(incidents.FaultJournal)),
		Certificates:   p.certificates,
		IndexHint:      b.indexHints.Hint,
		ObserveStage:   metrics.ObserveStages(b.ops.Metrics, broker.Stages),

		ObserveUnauthenticated: b.ops.Metrics.ObserveUnauthenticatedRefusal,
		ObserveSignerLimited:   b.observeSignerLimited,
	})
	if err != nil {
		return err
	}
	// Before anything is served: what an earlier run left between a request's replay marks and
	// its acceptance is journaled as refused, and its retry made possible.
	if _, err := b.pipeline.CloseInterrupted(ctx, clock.Now()); err != nil {
		return fmt.Errorf("close the requests an earlier run left unadmitted: %w", err)
	}
	// And what it left on delivery is the worker's at its first scan, whatever its lease.
	if n, err := b.pipeline.ResumeEarlierRun(ctx); err != nil {
		return fmt.Errorf("resume the requests an earlier run left on delivery: %w", err)
	} else if n > 0 {
		p.logger.Info("requests an earlier run left on delivery are resumed", "requests", n)
	}
	return nil
}

// acceptsRequests refuses a new request while the router does not run or RabbitMQ is not
// connected (broker.Deps.TransportReady). The pipeline checks it once the request is
// authenticated, and journals the refusal. It holds only what a request cannot find out cheaply
// itself: a store that fails refuses the request at its first write (the replay marks) with the
// same SIO-UNAVAILABLE, and pinging it here would cost a round trip per request.
func (b *Broker) acceptsRequests() error {
	if !b.msg.router.IsRunning() {
		return siobroker.Errorf(siobroker.CodeUnavailable, "the broker's message router is not running; the request was not accepted, retry later")
	}
	if b.msg.amqp != nil {
		if err := b.msg.amqp.Ready(); err != nil {
			return siobroker.Wrap(siobroker.CodeUnavailable, err,
				"the message transport (RabbitMQ) is not connected; the request was not accepted, retry later")
		}
	}
	return nil
}

// deadLetterTopic is the transport's dead-letter queue; "" in process, where there is none.
func (b *Broker) deadLetterTopic() string {
	if b.msg.amqp == nil {
		return ""
	}
	return b.msg.amqp.DeadLetterTopic()
}

// limitsOf is the configured bounds of a request body.
func limitsOf(cfg config.Broker) soap.Limits {
	return soap.Limits{
		MaxBytes: cfg.HTTP.MaxBodyBytes, MaxDepth: cfg.HTTP.MaxDepth, MaxElements: cfg.HTTP.MaxElements,
		MaxAttributes: cfg.HTTP.MaxAttributes, MaxNamespaceDecls: cfg.HTTP.MaxNamespaceDecls,
		MaxNamespaceDeclsTotal: cfg.HTTP.MaxNamespaceDeclsTotal, MaxNameBytes: cfg.HTTP.MaxNameBytes,
		MaxAttrValueBytes: cfg.HTTP.MaxAttrValueBytes, MaxTextBytes: cfg.HTTP.MaxTextBytes,
	}
}
