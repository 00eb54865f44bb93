package cli

import (
	"context"
	"io"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/internal/app"
	"github.com/sio-pso/siobroker/internal/private"
)

const serveUsage = `usage:
  siobroker serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--dev] [--insecure-listen]

Starts the broker and serves until interrupted (SIGINT, SIGTERM). The configuration is FILE
(default ` + app.DefaultConfigFile + `; a missing default file means the embedded default:
in-process transport and demo adapters), then the SIOBROKER_* environment variables
(SIOBROKER_<KEY>, "." and "-" written "_", e.g. SIOBROKER_AMQP_PREFIX), then the flags. Every
operator's command reads the configuration the same way.

The SOAP channels, reports and the dashboard are served on listen; /metrics, /readyz, /healthz
(and /debug/ with debug.pprof) on operator.listen (default ` + config.DefaultOperatorListen + `), apart.

serve refuses to start, naming the fix:
  - with trust.roots or signing.cert_file empty, unless --dev: --dev takes the development PKI in
    DIR/pki (created on first start) for what is empty, and seeds its demo users, one of them
    with the operator right. Never in production.
  - with plain HTTP on an address other than loopback (listen without http.tls, or
    operator.listen), unless --insecure-listen (or http.insecure_listen: true).

Exit status: 0 stopped cleanly, 1 did not start or did not stop cleanly, 2 usage error, a
configuration that does not load, or one serve refuses (above).
`

// cmdServe runs "siobroker serve": the broker, until the process is interrupted.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFlags("serve", serveUsage, stdout, stderr)
	b := addBrokerFlags(f, true)
	listen := f.String("listen", "", "address to listen on (default: the configuration's listen)")
	dev := f.Bool("dev", false, "use the development PKI in DIR/pki for trust.roots and signing.* left empty, and seed its demo users (not for production)")
	insecure := f.Bool("insecure-listen", false, "allow plain HTTP on an address other than loopback (http.insecure_listen)")
	if code, ok := f.parseNoArgs(args); !ok {
		return code
	}
	e, code, ok := b.loadOrFail()
	if !ok {
		return code
	}
	cfg := e.cfg
	if *listen != "" {
		cfg.Listen = *listen
	}
	cfg.Dev = *dev
	if *insecure {
		cfg.HTTP.InsecureListen = true
	}
	// Before anything is written or bound: a configuration serve will not run is the operator's
	// to fix, like one that does not load.
	if err := app.CheckStart(cfg); err != nil {
		return f.fail(exitUsage, "%v", err)
	}
	// Before anything is written: whatever the broker or a library creates under the data
	// directory is private to its user (internal/private).
	private.RestrictUmask()
	logger := app.NewLogger(stderr, cfg.Log)
	if err := app.Serve(ctx, cfg, stdout, logger); err != nil {
		logger.Error("broker did not start, or did not stop cleanly", "error", err, "config", e.file, "data_dir", e.dataDir())
		return exitFailed
	}
	return exitOK
}
