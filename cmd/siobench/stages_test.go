package main

import (
	"context"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/metrics"
)

// TestStageFiguresFromTheBrokersMetrics: the figures of a window are the difference of two
// scrapes of the broker's own /metrics, with the quantiles interpolated in the buckets.
func TestStageFiguresFromTheBrokersMetrics(t *testing.T) {
	m := metrics.New(metrics.Sources{
		Services:      func(context.Context) ([]health.ServiceState, error) { return nil, nil },
		OpenIncidents: func(context.Context) (int, error) { return 0, nil },
		JournalHead:   func(context.Context) (int64, error) { return 0, nil },
		ArchivedUpTo:  func(context.Context) (int64, error) { return 0, nil },
	})
	observe := metrics.ObserveStages(m, []string{"verify", "sign", "services"})
	request := m.ObserveRequests("sync")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	observe("sign", time.Second) // before the window: not counted
	before, err := scrapeStages(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		observe("sign", 1500*time.Microsecond) // all in the (1 ms, 2 ms] bucket
		observe("verify", 300*time.Microsecond)
		request(siobroker.OutcomeAnswered, "", 7*time.Millisecond)
	}
	after, err := scrapeStages(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	figs := stageFigures(before, after, []string{"verify", "services", "sign"})
	var names []string
	for _, f := range figs {
		names = append(names, f.Stage)
	}
	// services had no request in the window; the whole request comes last.
	if strings.Join(names, ",") != "verify,sign,"+wholeRequest {
		t.Fatalf("stages %v", names)
	}
	sign := figs[1]
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6 }
	if sign.Count != 100 || !near(sign.MeanMs, 1.5) || !near(sign.P50Ms, 1.5) || !near(sign.P99Ms, 1.99) {
		t.Errorf("sign %+v: want 100 requests, mean 1.5 ms, p50 1.5 ms and p99 1.99 ms (linear in the 1-2 ms bucket)", sign)
	}
	if v := figs[0]; v.Count != 100 || !near(v.P99Ms, 0.495) {
		t.Errorf("verify %+v: want p99 0.495 ms (linear in the first bucket, from 0)", v)
	}
	if w := figs[2]; w.Count != 100 || !near(w.MeanMs, 7) {
		t.Errorf("whole request %+v", w)
	}
}

// TestQuantileInTheInfBucket: a quantile past the highest finite bound is that bound, as
// histogram_quantile gives it.
func TestQuantileInTheInfBucket(t *testing.T) {
	h := histogram{count: 10, bounds: []float64{0.001, 0.01, math.Inf(1)}, buckets: []float64{5, 8, 10}}
	if q := h.quantile(0.99); q != 0.01 {
		t.Errorf("p99 = %v, want 0.01", q)
	}
	if q := h.quantile(0.5); q != 0.001 {
		t.Errorf("p50 = %v, want 0.001", q)
	}
	if q := (histogram{}).quantile(0.5); q != 0 {
		t.Errorf("empty: %v", q)
	}
}
