package broker

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/operator/health"
	"github.com/sio-pso/siobroker/operator/maintenance"
	"github.com/sio-pso/siobroker/operator/metrics"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/signing"
)

// noDelays is the delay tracker of a snapshot whose delays are not under test: the harness's
// dispatcher tells no tracker of its messages.
type noDelays struct{}

func (noDelays) Oldest() map[siobroker.IncidentCause]time.Duration { return nil }

// exported returns what /metrics says of service: every per-service counter and gauge of the
// snapshot the metrics, the dashboard and the command line share, over h's dispatcher, keyed by
// the metric's name without the prefix and its labels but the service, as in
// `service_answers_total{result="ok"}`. The latency histogram and the recent ratio are left out.
func exported(t *testing.T, h *harness, service int) map[string]float64 {
	t.Helper()
	mon, err := health.NewMonitor(health.MonitorConfig{Dispatcher: h.dispatcher, Delays: noDelays{}, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Sources{Services: mon.Services})
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		name, ok := strings.CutPrefix(f.GetName(), metrics.Prefix+"service_")
		if !ok || name == "answer_duration_seconds" || name == "recent_error_ratio" || name == "oldest_undelivered_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			var labels []string
			mine := false
			for _, l := range s.GetLabel() {
				if l.GetName() == "service" {
					mine = l.GetValue() == fmt.Sprint(service)
					continue
				}
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if !mine {
				continue
			}
			key := "service_" + name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case s.Counter != nil:
				out[key] = s.GetCounter().GetValue()
			case s.Gauge != nil:
				out[key] = s.GetGauge().GetValue()
			}
		}
	}
	return out
}

// zeroSeries is what /metrics says of a service nothing happened to: every series at zero.
func zeroSeries() map[string]float64 {
	return map[string]float64{
		"service_dispatches_total":                           0,
		`service_answers_total{result="ok"}`:                 0,
		`service_answers_total{result="no_data"}`:            0,
		`service_answers_total{result="error"}`:              0,
		"service_dispatch_errors_total":                      0,
		"service_timeouts_total":                             0,
		"service_late_answers_total":                         0,
		"service_refused_answers_total":                      0,
		`service_not_dispatched_total{reason="denied"}`:      0,
		`service_not_dispatched_total{reason="maintenance"}`: 0,
		"service_in_flight":                                  0,
		"service_overdue":                                    0,
	}
}

// with returns zeroSeries with the given series set.
func with(set map[string]float64) map[string]float64 {
	out := zeroSeries()
	for k, v := range set {
		out[k] = v
	}
	return out
}

// wantExported compares what /metrics says of service with want, series by series.
func wantExported(t *testing.T, h *harness, service int, want map[string]float64) {
	t.Helper()
	got := exported(t, h, service)
	keys := slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string]float64{got, want} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	})
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			t.Errorf("service %d: /metrics has no %s, want %v", service, k, w)
		case !wok:
			t.Errorf("service %d: /metrics has %s %v, which the test does not expect", service, k, g)
		case g != w:
			t.Errorf("service %d: %s = %v, want %v", service, k, g, w)
		}
	}
}

// waitStats polls h's counts of service until ok holds of them: an answer that comes after the
// reply is counted by the reply handler, on its own time. Bounded, never a measure of time.
func waitStats(t *testing.T, h *harness, service int, what string, ok func(s serviceCounts) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(h.dispatcher.Stats()[service]) {
		if time.Now().After(deadline) {
			t.Fatalf("service %d never %s: %+v", service, what, h.dispatcher.Stats()[service])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEveryOutcomeCountedAsWhatItWas drives one request per outcome of a service through the
// broker, the in-process transport and the adapter runtime, and reads the service's series as
// /metrics exports them: each outcome lands in its own series and in no other. The bug this
// holds: a service that timed out for its client, and whose answer came while the broker still
// waited for it in the background (routing.async_timeout), was counted as answered in time, and
// its timeout nowhere.
func TestEveryOutcomeCountedAsWhatItWas(t *testing.T) {
	window := func(service int) Maintenance {
		s := maintenance.NewSchedule(nil, siobroker.SystemClock{}, maintenance.Policy{})
		now := time.Now()
		s.SetFileWindows([]siobroker.MaintenanceWindow{{Services: []int{service}, Start: now.Add(-time.Hour), End: now.Add(time.Hour),
			Reason: "unit test"}})
		return s
	}
	tests := []struct {
		name     string
		opts     harnessOpts
		basis    siobroker.Basis
		services []int
		service  int                    // the service whose outcome is under test
		status   siobroker.ResultStatus // what its client is told
		settled  func(serviceCounts) bool
		want     map[string]float64
	}{
		{name: "answered with records", services: []int{1}, service: 1, status: siobroker.StatusOK,
			want: with(map[string]float64{"service_dispatches_total": 1, `service_answers_total{result="ok"}`: 1})},
		{name: "answered NO_DATA", services: []int{noDataFor}, service: noDataFor, status: siobroker.StatusOK,
			want: with(map[string]float64{"service_dispatches_total": 1, `service_answers_total{result="no_data"}`: 1})},
		{name: "the source's error", services: []int{failService}, service: failService, status: siobroker.StatusError,
			want: with(map[string]float64{"service_dispatches_total": 1, `service_answers_total{result="error"}`: 1})},
		{name: "no answer in time", services: []int{1, slowService}, service: slowService, status: siobroker.StatusTimeout,
			want: with(map[string]float64{"service_dispatches_total": 1, "service_timeouts_total": 1})},
		{name: "timed out, still waited for", opts: harnessOpts{asyncTimeout: 10 * time.Second},
			services: []int{1, slowService}, service: slowService, status: siobroker.StatusTimeout,
			want: with(map[string]float64{"service_dispatches_total": 1, "service_timeouts_total": 1, "service_overdue": 1})},
		{name: "timed out, answered late", opts: harnessOpts{asyncTimeout: 10 * time.Second, slowAnswers: true},
			services: []int{1, slowService}, service: slowService, status: siobroker.StatusTimeout,
			settled: func(s serviceCounts) bool { return s.LateAnswers == 1 },
			want:    with(map[string]float64{"service_dispatches_total": 1, "service_timeouts_total": 1, "service_late_answers_total": 1})},
		// Service 37 is a КГД service: criminal basis only.
		{name: "denied by the rights", basis: siobroker.BasisCourtAdmin, services: []int{1, 37}, service: 37, status: siobroker.StatusDenied,
			want: with(map[string]float64{`service_not_dispatched_total{reason="denied"}`: 1})},
		{name: "in a maintenance window", opts: harnessOpts{maintenance: window(5)}, services: []int{1, 5}, service: 5,
			status: siobroker.StatusError,
			want:   with(map[string]float64{`service_not_dispatched_total{reason="maintenance"}`: 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessWith(t, tt.opts)
			raw, _ := h.build(t, reqSpec{basis: tt.basis, services: tt.services})
			reply, _, err := h.handle(raw)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			_, res := h.parseReply(t, reply, signing.PlacementWSSE)
			i := slices.Index(tt.services, tt.service)
			if r := res.Services[i]; r.Service != tt.service || r.Status != tt.status {
				t.Fatalf("the client was told %+v, want service %d %s", r, tt.service, tt.status)
			}
			if tt.settled != nil {
				waitStats(t, h, tt.service, "settled", tt.settled)
			}
			wantExported(t, h, tt.service, tt.want)
			if tt.service != 1 && slices.Contains(tt.services, 1) {
				// The other service of the request is counted apart, as answered.
				wantExported(t, h, 1, with(map[string]float64{"service_dispatches_total": 1, `service_answers_total{result="ok"}`: 1}))
			}
			if s := h.dispatcher.Stats()[tt.service]; s.Dispatched != s.Answered+s.DispatchErrors+s.Timeouts+uint64(s.InFlight) {
				t.Errorf("the sum does not hold: %+v", s)
			}
		})
	}
}

// serviceCounts is a service's counts as the dispatcher keeps them.
type serviceCounts = routing.ServiceStats
