package app

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/sio-pso/siobroker/config"
	"github.com/sio-pso/siobroker/httpapi"
)

// Paths of the debug endpoints on the operator's listener, with debug.pprof.
const (
	PProfPath   = "/debug/pprof/"
	ExpvarPath  = "/debug/vars"
	HealthzPath = "/healthz"
)

var publishLiveHeap sync.Once

// liveHeapBytes is the heap the last garbage collection found live. Unlike memstats' HeapAlloc it
// does not saw up and down between collections, so its slope over a long load shows a leak.
func liveHeapBytes() any {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// operatorServer is the listener of operator.listen.
type operatorServer struct {
	server   *http.Server
	listener net.Listener
}

// operatorHandler is what the operator's listener serves: /metrics, /readyz and /healthz; with
// debug.pprof, net/http/pprof under /debug/pprof/ and expvar's /debug/vars (runtime.MemStats and
// heap_live_bytes, for the soak benchmark's heap samples). None of it is on the SOAP listener:
// the metrics and readiness say how the broker is doing to whoever asks, and profiles expose
// the process's memory.
func (o *brokerOps) operatorHandler(pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, o.Metrics.Handler())
	mux.Handle("GET "+ReadyzPath, o.Readiness)
	mux.Handle("GET "+HealthzPath, httpapi.Healthz())
	if pprofOn {
		mux.HandleFunc(PProfPath, pprof.Index)
		mux.HandleFunc(PProfPath+"cmdline", pprof.Cmdline)
		mux.HandleFunc(PProfPath+"profile", pprof.Profile)
		mux.HandleFunc(PProfPath+"symbol", pprof.Symbol)
		mux.HandleFunc(PProfPath+"trace", pprof.Trace)
		publishLiveHeap.Do(func() { expvar.Publish("heap_live_bytes", expvar.Func(liveHeapBytes)) })
		mux.Handle(ExpvarPath, expvar.Handler())
	}
	return mux
}

// startOperator binds operator.listen and serves the operator's endpoints on it, plain HTTP
// (CheckStart has refused a non-loopback address unless http.insecure_listen).
func (b *Broker) startOperator(cfg config.Broker, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Operator.Listen)
	if err != nil {
		return fmt.Errorf("operator.listen: listen on %s: %w", cfg.Operator.Listen, err)
	}
	srv := &http.Server{Handler: b.ops.operatorHandler(cfg.Debug.PProf), ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	if !cfg.Debug.PProf {
		// A CPU profile or trace streams for as long as its seconds parameter asks; without
		// them, nothing here takes long.
		srv.WriteTimeout = 30 * time.Second
	}
	b.operator = operatorServer{server: srv, listener: ln}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("operator listener stopped", "error", err)
		}
	}()
	if cfg.Debug.PProf {
		logger.Warn("serving pprof and expvar on the operator listener for diagnostics; do not leave this on",
			"listen", ln.Addr().String())
	}
	return nil
}

// OperatorURL is the scheme and address of the operator's listener: http://HOST:PORT.
func (b *Broker) OperatorURL() string { return "http://" + b.operator.listener.Addr().String() }

// closeOperator stops the operator's listener.
func (b *Broker) closeOperator() error {
	switch {
	case b.operator.server != nil:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return b.operator.server.Shutdown(ctx)
	case b.operator.listener != nil:
		return b.operator.listener.Close()
	}
	return nil
}
