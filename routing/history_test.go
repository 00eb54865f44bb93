package routing

import (
	"context"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/adapters"
	"github.com/sio-pso/siobroker/internal/testclock"
	"github.com/sio-pso/siobroker/schemas"
)

var histT0 = time.Date(2026, 11, 23, 10, 0, 0, 0, siobroker.Astana)

func at(min, sec int) time.Time {
	return histT0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
}

// TestHistoryBuckets: each count lands in the minute (and the ten minutes) it happened in, per
// service and in the total; the window ends with the minute of now and starts HourBuckets-1
// minutes before; a service never counted has empty buckets.
func TestHistoryBuckets(t *testing.T) {
	var c serviceCounters
	for range 2 {
		c.begin(1, at(0, 30))
	}
	c.end(1, endAnswered, at(0, 31))
	c.end(1, endTimeout, at(0, 59))
	for range 4 {
		c.begin(1, at(1, 10))
	}
	c.begin(2, at(1, 10))
	c.end(1, endErrorAnswer, at(1, 11))
	c.end(1, endDispatchError, at(1, 12))
	c.end(2, endNoData, at(1, 12))
	c.undispatched(1, false, at(1, 20))
	c.undispatched(1, true, at(1, 21))

	h := c.history(1, false, at(1, 59))
	if len(h) != int(HourBuckets) {
		t.Fatalf("%d buckets in the hour, want %d", len(h), HourBuckets)
	}
	last, prev := h[len(h)-1], h[len(h)-2]
	if !last.Start.Equal(at(1, 0)) || !prev.Start.Equal(at(0, 0)) || !h[0].Start.Equal(at(1, 0).Add(-59*time.Minute)) {
		t.Errorf("bucket starts %s, %s, first %s", prev.Start, last.Start, h[0].Start)
	}
	if last.Start.Location() != siobroker.Astana {
		t.Errorf("bucket start in %s, want Astana time", last.Start.Location())
	}
	if prev.Requests != 2 || prev.Answered != 1 || prev.Timeouts != 1 || prev.Errors != 0 {
		t.Errorf("10:00 of service 1: %+v", prev)
	}
	// An error answer is an answer and an error, as ServiceStats counts it.
	if last.Requests != 4 || last.Answered != 1 || last.Errors != 2 || last.Denied != 1 || last.Maintenance != 1 {
		t.Errorf("10:01 of service 1: %+v", last)
	}
	for _, b := range h[:len(h)-2] {
		if b.Requests+b.Answered+b.Errors+b.Timeouts+b.Denied+b.Maintenance != 0 {
			t.Errorf("bucket %s counts %+v, want nothing", b.Start, b)
		}
	}
	total := c.history(0, false, at(1, 59))
	if tl := total[len(total)-1]; tl.Requests != 5 || tl.Answered != 2 || tl.Errors != 2 {
		t.Errorf("10:01 of the total: %+v", tl)
	}
	for _, b := range c.history(3, false, at(1, 59)) {
		if b.Requests != 0 {
			t.Errorf("service 3, never counted: %+v", b)
		}
	}

	// The day: ten-minute buckets, the 10:00 one holding both minutes.
	day := c.history(1, true, at(1, 59))
	if len(day) != int(DayBuckets) || !day[len(day)-1].Start.Equal(at(0, 0)) || day[len(day)-1].Requests != 6 ||
		!day[0].Start.Equal(at(0, 0).Add(-(time.Duration(DayBuckets)-1)*DayStep)) {
		t.Errorf("day: %d buckets, last %+v, first %s", len(day), day[len(day)-1], day[0].Start)
	}

	// The figures the counters keep agree with the history's sums.
	s := c.snapshot(at(1, 59))[1]
	var req, ans, errs, tos uint64
	for _, b := range h {
		req, ans, errs, tos = req+b.Requests, ans+b.Answered, errs+b.Errors, tos+b.Timeouts
	}
	if req != s.Dispatched || ans != s.Answered || errs != s.Errors() || tos != s.Timeouts {
		t.Errorf("history sums %d/%d/%d/%d, counters %+v", req, ans, errs, tos, s)
	}
}

// TestHistoryRolls: the hour's window moves with now, an old minute leaves it, and a slot of the
// ring reused for a later minute starts from zero.
func TestHistoryRolls(t *testing.T) {
	var c serviceCounters
	c.begin(5, at(0, 0))
	c.begin(5, at(30, 0))
	h := c.history(5, false, at(59, 59))
	if h[0].Start != at(0, 0) || h[0].Requests != 1 {
		t.Errorf("at 10:59 the first bucket is %+v", h[0])
	}
	h = c.history(5, false, at(60, 0))
	if h[0].Start != at(1, 0) || sumRequests(h) != 1 {
		t.Errorf("at 11:00, 10:00 left the window: first %+v, %d requests", h[0], sumRequests(h))
	}
	c.begin(5, at(90, 0)) // the slot of 10:30
	h = c.history(5, false, at(90, 0))
	if last := h[len(h)-1]; last.Requests != 1 || sumRequests(h) != 1 {
		t.Errorf("at 11:30: last %+v, %d requests in the hour, want the 11:30 one only", last, sumRequests(h))
	}
	// A clock set back: a count older than what the slot holds is not counted over it.
	c.begin(5, at(30, 0))
	if h := c.history(5, false, at(90, 0)); h[len(h)-1].Requests != 1 {
		t.Errorf("a count an hour back changed 11:30: %+v", h[len(h)-1])
	}
	// The day keeps 10:00 until it is 24 hours old.
	if d := c.history(5, true, at(24*60-1, 0)); d[0].Start != at(0, 0) || d[0].Requests != 1 {
		t.Errorf("the day's first bucket at 09:59 next day: %+v", d[0])
	}
	if d := c.history(5, true, at(24*60, 0)); d[0].Start != at(10, 0) || sumRequests(d) != 3 {
		t.Errorf("the day at 10:00 next day: first %+v, %d requests", d[0], sumRequests(d))
	}
}

func sumRequests(h []HistoryBucket) (n uint64) {
	for _, b := range h {
		n += b.Requests
	}
	return n
}

// TestHistoryPercentiles: p50 and p99 read from a bucket's histogram are within its resolution
// of the true ones, over the range of latencies a service has.
func TestHistoryPercentiles(t *testing.T) {
	for _, scale := range []time.Duration{50 * time.Microsecond, time.Millisecond, 30 * time.Millisecond} { // up to 30 s, the default limit
		var c serviceCounters
		const n = 1000
		for i := 1; i <= n; i++ {
			c.begin(9, at(0, 0))
			c.end(9, endAnswered, at(0, 1))
			c.latency(9, time.Duration(i)*scale, at(0, 1))
		}
		b := c.history(9, false, at(0, 30))
		last := b[len(b)-1]
		if last.Latencies != n {
			t.Fatalf("%d latencies, want %d", last.Latencies, n)
		}
		for _, p := range []struct {
			name      string
			got, want time.Duration
		}{{"p50", last.P50, 500 * scale}, {"p99", last.P99, 990 * scale}} {
			if rel := math.Abs(float64(p.got-p.want)) / float64(p.want); rel > LatencyResolution+1e-9 {
				t.Errorf("scale %s: %s = %s, want %s within %.1f%% (off by %.1f%%)", scale, p.name, p.got, p.want,
					100*LatencyResolution, 100*rel)
			}
		}
		if tl := c.history(0, true, at(0, 30)); tl[len(tl)-1].P99 != last.P99 {
			t.Errorf("the total's day p99 %s, the service's hour p99 %s", tl[len(tl)-1].P99, last.P99)
		}
	}
	// Below the histogram and above it the percentile stays within the bucket at the end.
	if b := latencyBucket(0); b != 0 {
		t.Errorf("bucket of 0: %d", b)
	}
	if b := latencyBucket(time.Hour); b != latencyBuckets-1 || latencyOf(b) < 100*time.Second {
		t.Errorf("bucket of an hour: %d (%s)", b, latencyOf(b))
	}
}

// TestHistoryMemoryBound: the histories are fixed-size arrays, one per service of Appendix 2 and
// one for the total, however long the broker runs and whatever service number is counted.
func TestHistoryMemoryBound(t *testing.T) {
	per := unsafe.Sizeof(history{})
	bound := per * uintptr(siobroker.LastService-siobroker.FirstService+2)
	if bound > 8<<20 {
		t.Errorf("the histories may take %d bytes (%d a service), want at most 8 MiB", bound, per)
	}
	var c serviceCounters
	for m := range 3 * 24 * 60 { // three days, a count every minute on every service and outside Appendix 2
		for _, s := range []int{1, 47, 93, 94, 5000, -1} {
			c.begin(s, at(m, 0))
		}
	}
	hists := 0
	for s, n := range c.svc {
		if n.hist != nil {
			hists++
			if s < siobroker.FirstService || s > siobroker.LastService {
				t.Errorf("a history was made for service %d", s)
			}
		}
	}
	if hists != 3 {
		t.Errorf("%d histories, want 3", hists)
	}
	h := c.history(47, false, at(3*24*60-1, 0))
	if len(h) != int(HourBuckets) || sumRequests(h) != uint64(HourBuckets) {
		t.Errorf("the last hour of three days: %d buckets, %d requests", len(h), sumRequests(h))
	}
	if d := c.history(0, true, at(3*24*60-1, 0)); sumRequests(d) != 3*24*60 {
		t.Errorf("the total of the last day: %d requests, want %d (three services a minute)", sumRequests(d), 3*24*60)
	}
}

// TestDispatcherHistory: the dispatcher's history counts what its Stats count, at its clock's
// time, and the latency of its answers on that clock.
func TestDispatcherHistory(t *testing.T) {
	clock := testclock.New(histT0.Add(30 * time.Second))
	env := newTestEnvClock(t, map[int]adapters.Backend{
		1: adapters.BackendFunc(func(context.Context, schemas.ServiceRequest) (siobroker.ServiceResult, error) {
			clock.Advance(40 * time.Millisecond)
			return siobroker.ServiceResult{}, nil
		}),
	}, clock)
	for _, id := range []string{"a", "b", "c"} {
		env.dispatcher.Dispatch(context.Background(), []schemas.ServiceRequest{request(id, 1, "750312300458")}, timeouts(2*time.Second, nil))
	}
	env.dispatcher.CountUndispatched(siobroker.ServiceResult{Service: 1, Status: siobroker.StatusDenied})
	h := env.dispatcher.History(1, false)
	last := h[len(h)-1]
	s := env.dispatcher.Stats()[1]
	if last.Start != histT0 || last.Requests != s.Dispatched || last.Answered != s.Answered || last.Requests != 3 ||
		last.Denied != s.Denied || last.Latencies != 3 {
		t.Errorf("history %+v, stats %+v", last, s)
	}
	if rel := math.Abs(float64(last.P50-40*time.Millisecond)) / float64(40*time.Millisecond); rel > LatencyResolution {
		t.Errorf("p50 %s, want 40ms", last.P50)
	}
}

// TestHistoryTraffic: the services with traffic in the hour or the day, and how much.
func TestHistoryTraffic(t *testing.T) {
	var c serviceCounters
	c.begin(1, at(0, 0))
	c.begin(2, at(50, 0))
	c.undispatched(2, false, at(51, 0))
	c.undispatched(3, true, at(52, 0))
	now := at(90, 0)
	if got := c.traffic(false, now); len(got) != 2 || got[2] != 2 || got[3] != 1 {
		t.Errorf("the hour's traffic at 11:30: %v", got)
	}
	if got := c.traffic(true, now); len(got) != 3 || got[1] != 1 {
		t.Errorf("the day's traffic at 11:30: %v", got)
	}
}

// TestStepIndex: a count lands in the step it happened in, at the edges too and before the epoch.
func TestStepIndex(t *testing.T) {
	edge := time.Date(2026, 12, 7, 10, 0, 0, 0, siobroker.Astana)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{edge, edge.Unix() / 60},
		{edge.Add(-time.Nanosecond), edge.Unix()/60 - 1},
		{edge.Add(time.Minute - time.Nanosecond), edge.Unix() / 60},
		{time.Unix(-1, 0), -1},
		{time.Unix(-60, 0), -1},
		{time.Unix(-61, 0), -2},
	} {
		if got := stepIndex(tc.at, time.Minute); got != tc.want {
			t.Errorf("stepIndex(%s) = %d, want %d", tc.at, got, tc.want)
		}
	}
}
