package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters/adapterconfig"
	"github.com/sio-pso/siobroker/adapters/demo"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/internal/tracing/provider"
	"github.com/sio-pso/siobroker/postgres"
	"github.com/sio-pso/siobroker/routing"
	amqptransport "github.com/sio-pso/siobroker/routing/amqp"
	"github.com/sio-pso/siobroker/routing/msgauth"
	"github.com/sio-pso/siobroker/routing/routes"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/signing/devpki"
)

const adapterUsage = `usage:
  siobroker adapter --config FILE [--instance NAME] [--log-format text|json]

Runs an adapter process: it consumes the RabbitMQ queues of the services (and case registries)
its configuration names and answers them from their backends, until interrupted. Any number of
adapter processes may serve the same service; they compete for its messages. The queues must
exist: a broker with transport amqp declares them when it starts.
The broker's environment variables SIOBROKER_AMQP_URL and SIOBROKER_AMQP_PREFIX, when set,
override the file's transport.amqp_url and transport.prefix, as they override the broker's
amqp.url and amqp.prefix, so that a broker and its adapters started with one environment find
the same queues.
Every service message must carry the broker's authenticator made with the adapter's key
(transport.message_key_file; siobroker transport-key derive): one that does not goes to the
dead-letter queue unasked. The answers are authenticated with the same key.
Exit status: 0 stopped on interrupt, 1 failed (RabbitMQ, the queues, a backend), 2 usage error
or a configuration (or key file) that does not load.
`

// cmdAdapter runs an adapter process: it consumes the RabbitMQ queues of the services (and case
// registries) its configuration names and answers them from their backends.
func cmdAdapter(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("adapter", adapterUsage, stdout, stderr)
	configFile := f.String("config", "", "the adapter's configuration (YAML; see testdata/adapters/config/adapter.yaml) (required)")
	instance := f.String("instance", "", "this process's name in logs and answers (default: the config's name)")
	logFormat := f.String("log-format", "text", "text or json")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	if *configFile == "" {
		return f.usageError("--config is required")
	}
	cfg, overrides, err := adapterconfig.LoadEnv(*configFile, os.LookupEnv)
	if err != nil {
		return f.fail(exitUsage, "%v", err)
	}
	if *instance == "" {
		*instance = cfg.Name
	}
	logger := app.NewLogger(stderr, config.Log{Format: *logFormat, Level: "info"}).With("adapter", *instance)
	for _, o := range overrides {
		logger.Info("configuration from the environment", "key", o.Key, "env", o.Env)
	}
	auth, err := adapterKeys(cfg, logger)
	if err != nil {
		return f.fail(exitUsage, "%s: %v", *configFile, err)
	}
	if err := runAdapter(ctx, cfg, auth, rabbitSource(*configFile, cfg, overrides), *instance, logger, stdout); err != nil {
		logger.Error("adapter stopped", "error", err)
		return exitFailed
	}
	return exitOK
}

// rabbitSource names the RabbitMQ and the queue prefix an adapter uses, without the password,
// each with where it came from: the environment or the file.
func rabbitSource(file string, cfg *adapterconfig.Config, overrides []adapterconfig.Override) string {
	from := func(key string) string {
		for _, o := range overrides {
			if o.Key == key {
				return o.Env
			}
		}
		return file
	}
	return fmt.Sprintf("RabbitMQ %s (from %s), prefix %q (from %s)", redactURL(cfg.Transport.AMQPURL), from("transport.amqp_url"),
		cfg.Transport.Prefix, from("transport.prefix"))
}

// adapterKeys reads the adapter's key, and the previous one of a rotation: an adapter process does
// not run without its key, or anyone who can publish to its queues would make it ask its sources.
// The key's adapter is the one the broker authenticates the messages for, whatever the process
// is called (runAdapter holds it to the routing table when the config names one).
func adapterKeys(cfg *adapterconfig.Config, logger *slog.Logger) (*msgauth.Adapter, error) {
	t := cfg.Transport
	if t.MessageKeyFile == "" {
		return nil, fmt.Errorf("transport.message_key_file is not set: an adapter checks every service message with its key "+
			"and does not run without one; write it on the broker's machine with "+
			"`siobroker transport-key derive --adapter %s --out FILE` (the adapter its services are routed to)", cfg.Name)
	}
	key, err := msgauth.ReadKey(t.MessageKeyFile)
	if err != nil {
		return nil, fmt.Errorf("transport.message_key_file: %w", err)
	}
	acfg := msgauth.AdapterConfig{Key: key}
	if t.PreviousMessageKeyFile != "" {
		if acfg.Previous, err = msgauth.ReadKey(t.PreviousMessageKeyFile); err != nil {
			return nil, fmt.Errorf("transport.previous_message_key_file: %w", err)
		}
		acfg.PreviousUntil, _ = t.PreviousKeyUntil() // validated with the file
		if time.Now().After(acfg.PreviousUntil) {
			logger.Warn("the previous transport key is no longer accepted; remove transport.previous_message_key_file", "until", acfg.PreviousUntil)
		}
	}
	auth, err := msgauth.NewAdapter(acfg)
	if err != nil {
		return nil, err
	}
	logger.Info("service messages are authenticated", "key_adapter", key.Adapter(), "key_id", key.ID())
	return auth, nil
}

// runAdapter runs the adapter until ctx ends; rabbit names its RabbitMQ and prefix for errors.
func runAdapter(ctx context.Context, cfg *adapterconfig.Config, auth *msgauth.Adapter, rabbit, instance string, logger *slog.Logger, stdout io.Writer) error {
	// The adapter follows the broker's sampling: its spans are recorded when the broker's
	// publish was, so that a trace is whole or absent.
	tp, err := provider.New(ctx, cfg.Tracing, provider.Options{FollowRemoteSampling: true, InstanceID: instance}, logger.With("component", "tracing"))
	if err != nil {
		return err
	}
	defer func() {
		// Deferred first, so run last, once the router has stopped: the spans of the last
		// deliveries are exported before the process ends.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			logger.Warn("tracing: spans not exported at exit", "error", err)
		}
	}()
	if cfg.Tracing.Enabled() {
		logger.Info("tracing: spans exported over OTLP/HTTP", "endpoint", cfg.Tracing.OTLPEndpoint)
	}
	backends, err := adapterconfig.OpenTraced(cfg, nil, tp)
	if err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	defer backends.Close()
	var cases map[string][]demo.Case
	if len(cfg.CaseRegistries.Names) > 0 {
		m, err := devpki.LoadManifest(cfg.CaseRegistries.DemoPKI)
		if err != nil {
			return fmt.Errorf("case_registries.demo_pki: %w", err)
		}
		cases = demo.CasesOf(m.Users)
	}

	queueOf, sharedQueues, err := adapterQueues(cfg)
	if err != nil {
		return err
	}
	if cfg.RoutesFile != "" && auth.Name() != cfg.Name {
		// Every message the broker sends would be refused as made for another adapter.
		return fmt.Errorf("transport.message_key_file %s is adapter %s's key, but %s routes this adapter's services to adapter %s; "+
			"derive this adapter's own key (siobroker transport-key derive --adapter %s)", cfg.Transport.MessageKeyFile, auth.Name(),
			cfg.RoutesFile, cfg.Name, cfg.Name)
	}
	wmLogger := routing.WatermillLogger(logger.With("component", "watermill"))
	// The broker declares the topology; the adapter only checks that its queues exist, so that a
	// misconfigured adapter fails at start instead of consuming from queues nobody fills.
	t, err := amqptransport.New(ctx, amqptransport.Config{
		URL: cfg.Transport.AMQPURL, Instance: instance, Prefix: cfg.Transport.Prefix,
		Services: slices.Sorted(maps.Keys(backends.Backends)), Registries: cfg.RegistryNames(), Queues: sharedQueues,
		Prefetch: cfg.Transport.Prefetch, Concurrency: cfg.Transport.Concurrency, ReconnectMax: cfg.Transport.ReconnectMax,
	}, wmLogger)
	if err != nil {
		return fmt.Errorf("%s (is a broker with transport amqp and the same prefix started? it declares the queues): %w", rabbit, err)
	}
	defer t.Close()

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, wmLogger)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	clock := siobroker.SystemClock{}
	attempts, backoff := cfg.Retry.Effective()
	var ledger siobroker.Ledger
	if cfg.Ledger.DSN != "" {
		// The owner names this process in the rows it writes: two processes may share a name.
		host, _ := os.Hostname()
		owner := fmt.Sprintf("%s@%s/%d", instance, host, os.Getpid())
		l, err := postgres.OpenLedger(ctx, cfg.Ledger.DSN, owner, cfg.Ledger.AnswerRetention, logger.With("component", "ledger"))
		if err != nil {
			return err
		}
		defer l.Close() // after the router: the handlers' claims end first
		ledger = l
	}
	runtime, err := routing.NewAdapterRuntime(routing.AdapterConfig{Name: instance, Backends: backends.Backends,
		Publisher: t.Publisher(), Clock: clock, Logger: logger, QueueOf: queueOf,
		Attempts: attempts, Backoff: backoff, DeadLetters: t.DeadLetterTopic(), Ledger: ledger, Auth: auth, TracerProvider: tp})
	if err != nil {
		return err
	}
	runtime.AddHandlers(router, t.Subscriber())
	for _, name := range cfg.RegistryNames() {
		// A registry of the registries section answers from its source; one of
		// case_registries.names from the development PKI's demo cases.
		source, ok := backends.Registries[name]
		if !ok {
			source = demo.NewCaseRegistry(name, cases)
		}
		registry, err := routing.NewRegistryRuntime(routing.RegistryConfig{Name: name, Registry: source,
			Publisher: t.Publisher(), Clock: clock, Logger: logger.With("registry", name),
			Auth: auth, DeadLetters: t.DeadLetterTopic(), TracerProvider: tp})
		if err != nil {
			return err
		}
		registry.AddHandlers(router, t.Subscriber())
	}
	// The line that says the adapter serves is printed once the router runs, by a goroutine
	// that runAdapter waits for before it returns: it wrote to stdout unjoined, which the race
	// detector caught against the caller reading stdout after Main returned
	// (TestNewDatabaseAdapterWalkthrough).
	runDone, printed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(printed)
		serving := func() {
			fmt.Fprintf(stdout, "siobroker adapter %s serving services %v and case registries %v\n",
				instance, runtime.Services(), cfg.RegistryNames())
		}
		select {
		case <-router.Running():
			serving()
		case <-runDone:
			select {
			case <-router.Running():
				serving()
			default: // the router never ran
			}
		}
	}()
	// Run returns when ctx ends; Close lets the handlers in flight finish (their messages are
	// acknowledged only after their answers are published).
	err = router.Run(ctx)
	close(runDone)
	<-printed
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}

// adapterQueues returns the queue of each service the adapter serves: its route's, when the
// config names the routing table, else its own. It refuses a table that gives one of the
// adapter's services, or one of its case registries, to another adapter or backend kind: the two
// files must agree, or requests would reach a process that answers them differently than the
// table says.
func adapterQueues(cfg *adapterconfig.Config) (queueOf func(int) string, shared []string, err error) {
	if cfg.RoutesFile == "" {
		return schemas.ServiceTopic, nil, nil
	}
	tbl, err := routes.Load(cfg.RoutesFile)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, n := range slices.Sorted(maps.Keys(cfg.Services)) {
		r, ok := tbl.Route(n)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("service %d has no route in %s", n, cfg.RoutesFile))
		case r.Adapter != cfg.Name || r.Backend != cfg.Services[n].Backend:
			errs = append(errs, fmt.Errorf("%s:%d: service %d is routed to adapter %s (%s), but this adapter is %s (%s); make the two agree",
				cfg.RoutesFile, r.Line, n, r.Adapter, r.Backend, cfg.Name, cfg.Services[n].Backend))
		case !strings.HasPrefix(r.Queue, "sio.service.") && !slices.Contains(shared, r.Queue):
			shared = append(shared, r.Queue)
		}
	}
	for _, name := range cfg.RegistryNames() {
		// The broker authenticates a registry's checks for the adapter of its route: served
		// here under another route, every one would be refused as made for another adapter.
		if to := tbl.RegistryAdapter(name); to != cfg.Name {
			errs = append(errs, fmt.Errorf("%s: case registry %s is routed to adapter %q, but this adapter is %s; route it here under registries, or remove it from this config's registries or case_registries.names",
				cfg.RoutesFile, name, to, cfg.Name))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return tbl.Queue, shared, nil
}
