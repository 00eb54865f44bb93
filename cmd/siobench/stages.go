package main

import (
	"context"
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"

	"github.com/sio-pso/siobroker/operator/metrics"
)

// The broker's histograms siobench reads over a load's window: the time of each step of the
// pipeline, and the whole synchronous request for comparison.
const (
	stageMetric   = "siobroker_request_stage_seconds"
	requestMetric = "siobroker_request_duration_seconds"
	// wholeRequest is the row of the whole synchronous request in a load's stage figures.
	wholeRequest = "whole request"
)

// histogram is one series of a Prometheus histogram: cumulative counts by upper bound.
type histogram struct {
	count   float64
	sum     float64
	bounds  []float64 // upper bounds, ascending, +Inf last
	buckets []float64 // cumulative counts, one per bound
}

// stageFigure is what the broker's histograms say of one stage over a load: how many requests
// passed it, their mean time, and the p50 and p99 estimated from the buckets (linear within a
// bucket, so only as fine as the bucket bounds).
type stageFigure struct {
	Stage  string  `json:"stage"`
	Count  float64 `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
}

// scrapeStages reads the stage histograms, and the synchronous request's as wholeRequest, from
// the broker's /metrics.
func scrapeStages(ctx context.Context, metricsURL string) (map[string]histogram, error) {
	families, err := metrics.Scrape(ctx, metricsURL)
	if err != nil {
		return nil, err
	}
	return stageHistograms(families), nil
}

// stageHistograms picks the stage and request histograms out of the broker's metric families.
func stageHistograms(families map[string]*dto.MetricFamily) map[string]histogram {
	out := map[string]histogram{}
	read := func(family, label, value string, as func(string) string) {
		f := families[family]
		if f == nil {
			return
		}
		for _, m := range f.GetMetric() {
			name, ok := labelValue(m, label)
			if !ok || (value != "" && name != value) || m.GetHistogram() == nil {
				continue
			}
			h := histogram{count: float64(m.GetHistogram().GetSampleCount()), sum: m.GetHistogram().GetSampleSum()}
			for _, b := range m.GetHistogram().GetBucket() {
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.buckets = append(h.buckets, float64(b.GetCumulativeCount()))
			}
			// The text format lists +Inf as a bucket; the parser leaves it out. The count is its value.
			if len(h.bounds) == 0 || !math.IsInf(h.bounds[len(h.bounds)-1], 1) {
				h.bounds = append(h.bounds, math.Inf(1))
				h.buckets = append(h.buckets, h.count)
			}
			out[as(name)] = h
		}
	}
	read(stageMetric, "stage", "", func(s string) string { return s })
	read(requestMetric, "channel", "sync", func(string) string { return wholeRequest })
	return out
}

func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

// stageFigures returns the figures of every stage over the window between two scrapes, in the
// order of order (stages not in it follow, by name), then the whole request.
func stageFigures(before, after map[string]histogram, order []string) []stageFigure {
	names := slices.Collect(func(yield func(string) bool) {
		for n := range after {
			if n != wholeRequest && !yield(n) {
				return
			}
		}
	})
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(order, a), slices.Index(order, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		if a < b {
			return -1
		}
		return 1
	})
	if _, ok := after[wholeRequest]; ok {
		names = append(names, wholeRequest)
	}
	var out []stageFigure
	for _, n := range names {
		d := after[n].minus(before[n])
		if d.count <= 0 {
			continue
		}
		out = append(out, stageFigure{Stage: n, Count: d.count, MeanMs: 1000 * d.sum / d.count,
			P50Ms: 1000 * d.quantile(0.50), P99Ms: 1000 * d.quantile(0.99)})
	}
	return out
}

// minus is h less an earlier scrape of the same series (zero when there was none).
func (h histogram) minus(earlier histogram) histogram {
	d := histogram{count: h.count - earlier.count, sum: h.sum - earlier.sum, bounds: h.bounds,
		buckets: slices.Clone(h.buckets)}
	if slices.Equal(h.bounds, earlier.bounds) {
		for i := range d.buckets {
			d.buckets[i] -= earlier.buckets[i]
		}
	}
	return d
}

// quantile estimates the q-quantile from the buckets, as Prometheus's histogram_quantile does:
// linear within the bucket it falls in; in the +Inf bucket, the highest finite bound.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 || len(h.bounds) == 0 {
		return 0
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, upper := range h.bounds {
		if h.buckets[i] >= rank {
			if math.IsInf(upper, 1) {
				return lower
			}
			in := h.buckets[i] - below
			if in <= 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/in
		}
		lower, below = upper, h.buckets[i]
	}
	return lower
}
