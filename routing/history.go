package routing

import (
	"math"
	"time"

	"github.com/sio-pso/siobroker"
)

// The history of the dashboard's charts: what the dispatcher counted, per service and in total,
// in per-minute buckets over the last hour and in ten-minute buckets over the last day. It is
// kept by the same calls, under the same lock, as the counters that /metrics and the services
// table read (serviceCounters), so that the charts and the figures never disagree.
//
// Its memory is bounded by construction: each service of Appendix 2, and the total, has one
// history of fixed-size arrays (HourBuckets + DayBuckets buckets, each with a fixed latency
// histogram), made the first time the service is counted; nothing grows with the traffic or
// with time.
const (
	HourStep    = time.Minute
	HourBuckets = int64(time.Hour / HourStep) // 60
	DayStep     = 10 * time.Minute
	DayBuckets  = int64(24 * time.Hour / DayStep) // 144
)

// Latency histogram: log-scale buckets, latencyPerOctave to each doubling from latencyBase, so
// that a percentile read from it is within a factor 2^(1/(2*latencyPerOctave)) (±9 %) of the
// true one. Bucket 0 holds everything below latencyBase, the last everything from
// latencyBase*2^((latencyBuckets-2)/latencyPerOctave) (about 105 s, past any service's limit).
const (
	latencyBase      = 100 * time.Microsecond
	latencyPerOctave = 4
	latencyBuckets   = 82
)

// LatencyResolution is the largest relative error of a percentile read from a history bucket.
var LatencyResolution = math.Pow(2, 1/(2.0*latencyPerOctave)) - 1

// HistoryBucket is what was counted in one step of time (HourStep or DayStep) from Start. The
// counts are those of ServiceStats, each counted when and as the counters count it: Requests
// the messages set out to send (Dispatched), Answered the answers with a result within the
// limit, Errors the error answers and dispatch errors, Timeouts, and Denied and Maintenance the
// results given without a message. P50 and P99 are read from the latencies of the answers
// within their limit (those /metrics observes, siobroker_service_answer_duration_seconds);
// both are zero when Latencies is.
type HistoryBucket struct {
	Start       time.Time
	Requests    uint64
	Answered    uint64
	Errors      uint64
	Timeouts    uint64
	Denied      uint64
	Maintenance uint64
	Latencies   uint64
	P50, P99    time.Duration
}

// histSlot is one bucket as kept: index is its number since the epoch (in steps), so that a
// slot of the ring still holding an older step is told apart and reset.
type histSlot struct {
	index                                                   int64
	requests, answered, errs, timeouts, denied, maintenance uint32
	latency                                                 [latencyBuckets]uint32
}

// history is one series: the hour's ring and the day's ring.
type history struct {
	hour [HourBuckets]histSlot
	day  [DayBuckets]histSlot
}

// histKind is what one count adds to a bucket.
type histKind int

const (
	histRequest histKind = iota
	histAnswered
	histError
	histTimeout
	histDenied
	histMaintenance
)

// stepIndex is the number of the step at falls in, counted from the epoch (rounded down, also
// before it); in integers, as a float64 would misplace counts near a step's edge.
func stepIndex(at time.Time, step time.Duration) int64 {
	ns := at.UnixNano()
	idx := ns / int64(step)
	if ns%int64(step) < 0 {
		idx--
	}
	return idx
}

// slotAt returns the slot of ring for the step of at, reset if it held an older step; nil when
// it holds a newer one (at is older than the ring: a clock set back), which is then not counted.
func slotAt(ring []histSlot, at time.Time, step time.Duration) *histSlot {
	idx := stepIndex(at, step)
	s := &ring[int(((idx%int64(len(ring)))+int64(len(ring)))%int64(len(ring)))]
	switch {
	case s.index == idx:
	case s.index < idx:
		*s = histSlot{index: idx}
	default:
		return nil
	}
	return s
}

func (h *history) add(kind histKind, at time.Time) {
	for _, s := range []*histSlot{slotAt(h.hour[:], at, HourStep), slotAt(h.day[:], at, DayStep)} {
		if s == nil {
			continue
		}
		switch kind {
		case histRequest:
			s.requests++
		case histAnswered:
			s.answered++
		case histError:
			s.errs++
		case histTimeout:
			s.timeouts++
		case histDenied:
			s.denied++
		case histMaintenance:
			s.maintenance++
		}
	}
}

func (h *history) observe(latency time.Duration, at time.Time) {
	b := latencyBucket(latency)
	for _, s := range []*histSlot{slotAt(h.hour[:], at, HourStep), slotAt(h.day[:], at, DayStep)} {
		if s != nil {
			s.latency[b]++
		}
	}
}

// latencyBucket is the histogram bucket of d.
func latencyBucket(d time.Duration) int {
	if d < latencyBase {
		return 0
	}
	b := 1 + int(math.Floor(latencyPerOctave*math.Log2(float64(d)/float64(latencyBase))))
	return min(b, latencyBuckets-1)
}

// latencyOf is the value a percentile falling in bucket b is read as: the geometric middle of
// its bounds (of the lowest, half its upper bound; of the highest, its lower bound).
func latencyOf(b int) time.Duration {
	switch b {
	case 0:
		return latencyBase / 2
	case latencyBuckets - 1:
		return time.Duration(float64(latencyBase) * math.Pow(2, float64(b-1)/latencyPerOctave))
	}
	return time.Duration(float64(latencyBase) * math.Pow(2, (float64(b)-0.5)/latencyPerOctave))
}

// percentile reads the q-quantile (0 < q ≤ 1) from a histogram of n observations.
func percentile(hist *[latencyBuckets]uint32, n uint64, q float64) time.Duration {
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for b, c := range hist {
		if seen += uint64(c); seen >= rank {
			return latencyOf(b)
		}
	}
	return latencyOf(latencyBuckets - 1)
}

// buckets returns the window of the ring ending with the step of now, oldest first; a nil
// history (nothing counted yet) gives empty buckets.
func (h *history) buckets(day bool, now time.Time) []HistoryBucket {
	n, step := HourBuckets, HourStep
	if day {
		n, step = DayBuckets, DayStep
	}
	var ring []histSlot
	switch {
	case h != nil && day:
		ring = h.day[:]
	case h != nil:
		ring = h.hour[:]
	}
	cur := stepIndex(now, step)
	out := make([]HistoryBucket, n)
	for i := range out {
		idx := cur - n + 1 + int64(i)
		b := HistoryBucket{Start: time.Unix(0, idx*int64(step)).In(siobroker.Astana)}
		if ring != nil {
			if s := &ring[int(((idx%n)+n)%n)]; s.index == idx {
				b.fill(s)
			}
		}
		out[i] = b
	}
	return out
}

func (b *HistoryBucket) fill(s *histSlot) {
	b.Requests, b.Answered, b.Errors, b.Timeouts = uint64(s.requests), uint64(s.answered), uint64(s.errs), uint64(s.timeouts)
	b.Denied, b.Maintenance = uint64(s.denied), uint64(s.maintenance)
	for _, c := range s.latency {
		b.Latencies += uint64(c)
	}
	if b.Latencies > 0 {
		b.P50, b.P99 = percentile(&s.latency, b.Latencies, 0.50), percentile(&s.latency, b.Latencies, 0.99)
	}
}

// historyOf returns the history of service (0: the total), made on first use; nil for a
// number outside Appendix 2, which would otherwise grow the histories without bound. The caller
// holds c.mu.
func (c *serviceCounters) historyOf(service int) *history {
	if service == 0 {
		if c.total == nil {
			c.total = new(history)
		}
		return c.total
	}
	if service < siobroker.FirstService || service > siobroker.LastService {
		return nil
	}
	n := c.get(service)
	if n.hist == nil {
		n.hist = new(history)
	}
	return n.hist
}

// record counts kind at at in service's history and in the total; the caller holds c.mu.
func (c *serviceCounters) record(service int, kind histKind, at time.Time) {
	if h := c.historyOf(service); h != nil {
		h.add(kind, at)
		c.historyOf(0).add(kind, at)
	}
}

// latency records the latency of an answer of service within its limit, at at.
func (c *serviceCounters) latency(service int, d time.Duration, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.historyOf(service); h != nil {
		h.observe(d, at)
		c.historyOf(0).observe(d, at)
	}
}

// history returns the buckets of service (0: every service together) over the last hour, or
// the last day when day is true, ending with the bucket of now.
func (c *serviceCounters) history(service int, day bool, now time.Time) []HistoryBucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	var h *history
	if service == 0 {
		h = c.total
	} else if n := c.svc[service]; n != nil {
		h = n.hist
	}
	return h.buckets(day, now)
}

// History returns what d counted for service (0: every service together) over the last hour in
// per-minute buckets (HourStep), or over the last day in ten-minute buckets (DayStep) when day
// is true, oldest first, the last bucket being the one of the dispatcher's clock's now.
func (d *Dispatcher) History(service int, day bool) []HistoryBucket {
	return d.counters.history(service, day, d.clock.Now())
}

// traffic returns, for every service with traffic in the last hour (or day), how many messages
// it was sent and results it was given without one (denied, maintenance) in that window.
func (c *serviceCounters) traffic(day bool, now time.Time) map[int]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, step := HourBuckets, HourStep
	if day {
		n, step = DayBuckets, DayStep
	}
	cur := stepIndex(now, step)
	out := make(map[int]uint64)
	for service, cn := range c.svc {
		if cn.hist == nil {
			continue
		}
		ring := cn.hist.hour[:]
		if day {
			ring = cn.hist.day[:]
		}
		var sum uint64
		for i := range ring {
			if s := &ring[i]; s.index > cur-n && s.index <= cur {
				sum += uint64(s.requests) + uint64(s.denied) + uint64(s.maintenance)
			}
		}
		if sum > 0 {
			out[service] = sum
		}
	}
	return out
}

// Traffic returns, for every service that had any in the last hour (or the last day when day
// is true) of the dispatcher's clock, how many messages it was sent and results it was given
// without one (denied, maintenance): the dashboard's "busy" services.
func (d *Dispatcher) Traffic(day bool) map[int]uint64 { return d.counters.traffic(day, d.clock.Now()) }
