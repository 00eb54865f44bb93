package app

import (
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/httpapi"
	"github.com/sio-pso/siobroker/internal/private"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/maintenance/publish"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// startHTTP mounts the public faces of the broker (the synchronous and asynchronous channels,
// reports, the dashboard, liveness) on one handler and starts serving it, with HSTS over TLS;
// then the operator's listener (metrics, readiness, diagnostics), apart.
func (b *Broker) startHTTP(p *parts) error {
	cfg := p.cfg
	srvCfg := httpapi.ServerConfig{
		Addr: cfg.Listen, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout,
		WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
	}
	if cfg.HTTP.TLS.Enabled {
		var err error
		if srvCfg.TLS, err = httpapi.TLSConfig(cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile, cfg.HTTP.TLS.ClientAuth, p.trust.Roots()); err != nil {
			return err
		}
		b.web.tls = true
	}
	// Bound first: the WSDLs' address, when the configuration does not give it, is the address
	// bound (a port 0 becomes the port chosen).
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	b.web.listener = listener
	b.web.publicURL = publicURLOf(cfg, listener.Addr(), p.logger)
	limiter, err := b.clientLimiter(p)
	if err != nil {
		return err
	}
	srvCfg.Limiter = limiter
	handler, err := b.handler(p, limiter)
	if err != nil {
		return err
	}
	if b.web.tls {
		handler = httpapi.HSTS(cfg.HTTP.TLS.HSTSMaxAge, handler)
	}
	b.web.server = httpapi.NewServer(srvCfg, handler, p.logger)
	go func() {
		var err error
		if b.web.tls {
			err = b.web.server.ServeTLS(listener, "", "")
		} else {
			err = b.web.server.Serve(listener)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("HTTP server stopped", "error", err)
		}
	}()
	return b.startOperator(cfg, p.logger)
}

// publicURLOf is the address the WSDLs give: http.public_url, else the scheme of http.tls and
// the host of listen with the port bound. A wildcard host (0.0.0.0, ::, none) names no address a
// client could use: the machine's host name stands for it, with a warning to set
// http.public_url. The request's Host header is never used: it is the client's word.
func publicURLOf(cfg config.Broker, bound net.Addr, logger *slog.Logger) string {
	if cfg.HTTP.PublicURL != "" {
		return strings.TrimSuffix(cfg.HTTP.PublicURL, "/")
	}
	scheme := "http"
	if cfg.HTTP.TLS.Enabled {
		scheme = "https"
	}
	host, _, _ := net.SplitHostPort(cfg.Listen) // validated by config
	_, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		port = "0"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		name, err := os.Hostname()
		if err != nil || name == "" {
			name = "localhost"
		}
		u := scheme + "://" + net.JoinHostPort(name, port)
		logger.Warn("http.public_url is not set and listen names every interface: the WSDLs give this machine's name; "+
			"set http.public_url to the address clients use", "listen", cfg.Listen, "public_url", u)
		return u
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// reportsService is reports over the journal and its request index. An XLSX report spills its
// rows beyond 16 MB into DATA/tmp, a directory of the broker's own: they hold the requests'
// subjects.
func (b *Broker) reportsService(p *parts) (*reports.Service, error) {
	cfg := p.cfg
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := private.MkdirAll(tmp); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	return reports.New(reports.Config{ExportRoles: cfg.Reports.ExportRoles, OversightRoles: cfg.Reports.OversightRoles,
		VerifyClientCert: p.trust.VerifyChain, TempDir: tmp}, p.journal, p.indexer, p.users, p.clock, p.logger.With("component", "reports"))
}

// handler is the broker's HTTP handler: the synchronous channel at the configured endpoint, with
// the other faces mounted beside it; limiter holds both SOAP channels.
func (b *Broker) handler(p *parts, limiter *httpapi.ClientLimiter) (http.Handler, error) {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	windows, err := publish.New(publish.Config{
		Schedule: b.live.maintenance, Users: p.users, Clock: clock, Logger: logger.With("component", "maintenance-windows"),
		PublicURL: b.web.publicURL, VerifyClientCert: p.trust.VerifyChain,
		Verify: p.verifier.Verify, Sign: p.signer.Sign, Limits: limitsOf(cfg), MessageDateWindow: cfg.Replay.Window, Marks: p.replay.calls,
	})
	if err != nil {
		return nil, err
	}
	// GetMaintenanceWindows is an operation of sync-channel-v10.wsdl, which the asynchronous
	// endpoint serves as its own too, with its address: both take it.
	operations := []httpapi.Operation{{
		Element: xml.Name{Space: schemas.NSOperations, Local: soap.OpGetMaintenanceWindows.Request},
		Handle:  windows.GetMaintenanceWindows,
	}}
	asyncHandler, err := httpapi.NewHandler(httpapi.Config{
		Endpoint:     AsyncPath,
		PublicURL:    b.web.publicURL,
		WSDL:         soap.WSDLAsyncChannel,
		WSDLAlso:     []string{soap.WSDLSyncChannel}, // the broker's own asynchronous variant
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Clock:        clock,
		Logger:       logger.With("component", "http-async"),
		// Status and fetch queries read the store only, and are answered while RabbitMQ is down;
		// the broker refuses new requests then, and journals it (broker.Deps.TransportReady).
		Observe:        b.ops.Metrics.ObserveRequests("async"),
		Limiter:        limiter,
		Operations:     operations,
		TracerProvider: p.tracer,
	}, broker.AsyncPipeline{B: b.pipeline})
	if err != nil {
		return nil, err
	}
	reportsService, err := b.reportsService(p)
	if err != nil {
		return nil, err
	}
	dashboardHandler, err := b.dashboardHandler(p, reportsService)
	if err != nil {
		return nil, err
	}
	mount := map[string]http.Handler{
		AsyncPath: asyncHandler,
		// The reports and the dashboard read a POSTed body before its signer is known, as the
		// SOAP channels do: the same per-address limits hold for them.
		reports.Path:   limiter.Limit(reportsService.Handler(p.verifier.Verify, p.signer.Sign, limitsOf(cfg), clock, p.replay.calls), clock),
		dashboard.Path: limiter.Limit(dashboardHandler, clock),
		// The schedule of maintenance windows, for participants (§36, 42).
		publish.FeedPrefix: windows.Handler(),
	}
	if cfg.HR.HTTP {
		hr, err := b.hrFeed(p)
		if err != nil {
			return nil, err
		}
		// The HR systems' feeds of §15, authenticated by their HMAC keys; the per-address limits
		// hold for them as for every POST read before its sender is known.
		mount[HRFeedPath] = limiter.Limit(hr.Handler(), clock)
	}
	return httpapi.NewHandler(httpapi.Config{
		// No /metrics, /readyz or /debug/ here: they are on the operator's listener alone.
		Mount:        mount,
		Operations:   operations,
		Endpoint:     cfg.Endpoint,
		PublicURL:    b.web.publicURL,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Clock:        clock,
		Logger:       logger.With("component", "http"),
		// No Ready: the pipeline refuses a request while the transport is down once it is
		// authenticated, and journals the refusal (broker.Deps.TransportReady).
		Observe:        b.ops.Metrics.ObserveRequests("sync"),
		Limiter:        limiter,
		TracerProvider: p.tracer,
	}, b.pipeline)
}
