package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/sio-pso/siobroker/broker"
	"github.com/sio-pso/siobroker/httpapi"
	"github.com/sio-pso/siobroker/operator/dashboard"
	"github.com/sio-pso/siobroker/operator/reports"
	"github.com/sio-pso/siobroker/schemas/soap"
)

// startHTTP mounts every face of the broker (the synchronous and asynchronous channels, reports,
// the dashboard, metrics and readiness) on one handler and starts serving it.
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
	handler, err := b.handler(p)
	if err != nil {
		return err
	}
	b.web.server = httpapi.NewServer(srvCfg, handler, p.logger)
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	b.web.listener = listener
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
	return nil
}

// handler is the broker's HTTP handler: the synchronous channel at the configured endpoint, with
// the other faces mounted beside it.
func (b *Broker) handler(p *parts) (http.Handler, error) {
	cfg, clock, logger := p.cfg, p.clock, p.logger
	asyncHandler, err := httpapi.NewHandler(httpapi.Config{
		Endpoint:     AsyncPath,
		WSDL:         soap.WSDLAsyncChannel,
		WSDLAlso:     []string{soap.WSDLSyncChannel}, // the broker's own asynchronous variant
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Clock:        clock,
		Logger:       logger.With("component", "http-async"),
		// Status and fetch queries read the store only, and are answered while RabbitMQ is down;
		// the broker refuses new requests then, and journals it (broker.Deps.TransportReady).
		Observe: b.ops.Metrics.ObserveRequests("async"),
	}, broker.AsyncPipeline{B: b.pipeline})
	if err != nil {
		return nil, err
	}
	dashboardHandler, err := b.dashboardHandler(p)
	if err != nil {
		return nil, err
	}
	reportsService, err := reports.New(reports.Config{ExportRoles: cfg.Reports.ExportRoles, VerifyClientCert: p.trust.VerifyChain},
		p.journal, p.users, clock, logger.With("component", "reports"))
	if err != nil {
		return nil, err
	}
	return httpapi.NewHandler(httpapi.Config{
		Mount: b.ops.mount(map[string]http.Handler{
			AsyncPath:      asyncHandler,
			reports.Path:   reportsService.Handler(p.verifier.Verify, p.signer.Sign, limitsOf(cfg), clock, p.replay.calls),
			dashboard.Path: dashboardHandler,
		}),
		Endpoint:     cfg.Endpoint,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Clock:        clock,
		Logger:       logger.With("component", "http"),
		// No Ready: the pipeline refuses a request while the transport is down once it is
		// authenticated, and journals the refusal (broker.Deps.TransportReady).
		Observe: b.ops.Metrics.ObserveRequests("sync"),
	}, b.pipeline)
}
