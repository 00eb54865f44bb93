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

// serveDebug starts the diagnostics listener of debug.pprof: net/http/pprof under /debug/pprof/
// and expvar's /debug/vars (runtime.MemStats and heap_live_bytes, for the soak benchmark's heap
// samples). It has its
// own listener and mux, so that nothing of it is reachable through the SOAP endpoint's address.
// addr "" starts nothing. It returns the address bound and a function that stops the listener.
func serveDebug(addr string, logger *slog.Logger) (bound string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	publishLiveHeap.Do(func() { expvar.Publish("heap_live_bytes", expvar.Func(liveHeapBytes)) })
	mux.Handle("/debug/vars", expvar.Handler())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("debug.pprof: listen on %s: %w", addr, err)
	}
	// No write timeout: a CPU profile or trace streams for as long as its seconds parameter asks.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("debug listener stopped", "error", err)
		}
	}()
	logger.Warn("serving pprof and expvar for diagnostics; do not leave this on", "listen", ln.Addr().String())
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
