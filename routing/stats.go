package routing

import (
	"sync"
	"time"
)

// RecentWindow is the recent past a ServiceStats' recent counts cover.
const RecentWindow = 5 * time.Minute

// recentSlot is the length of one slot of the recent counts; RecentWindow holds recentSlots.
const (
	recentSlot  = 30 * time.Second
	recentSlots = int64(RecentWindow / recentSlot)
)

// ServiceStats is what a Dispatcher counted for one service since it started. Every message
// the dispatcher sends ends exactly one way, so Dispatched = Answered + DispatchErrors +
// Timeouts + InFlight; each is counted as what it was for the request that asked it, at the
// moment that was decided.
type ServiceStats struct {
	Dispatched uint64 // messages the dispatcher set out to send
	// Answered counts the answers that came within the service's time limit with a result: ok,
	// with records or without (NoData), or an error of the source (ErrorAnswers). An adapter's
	// answer that the source did not answer in time (status timeout) is not one: it is a timeout.
	Answered       uint64
	NoData         uint64 // of those, the ok answers without records (NO_DATA)
	ErrorAnswers   uint64 // of those, the answers with status error
	DispatchErrors uint64 // messages that could not be sent, or whose answer could not be read
	// Timeouts counts the messages without a result within the service's time limit: no answer
	// came, the adapter answered that its source did not answer in time, or the request was
	// cancelled first. A message is counted when its limit passes, even while its answer is still
	// waited for in the background (Overdue).
	Timeouts uint64
	InFlight int // sent, within their time limit, and their answer is awaited now
	// Overdue is how many of the Timeouts are still waited for, past their limit, for the late
	// services of a request (broker/late.go, routing.async_timeout).
	Overdue int
	// LateAnswers counts the answers that came after their message's time limit (the message
	// was counted a timeout then): while the broker still waited for them in the background, or
	// after that wait had ended, and any of a message this process did not send. They stand
	// apart from the sum above.
	LateAnswers uint64
	// RefusedAnswers counts the answers refused as unauthenticated (not made by the adapter the
	// service is routed to: package msgauth); they are never taken for an answer, and stand apart.
	RefusedAnswers uint64
	// Denied and Maintenance count the service's results the broker gave without dispatching a
	// message (CountUndispatched): refused by the access rights (App. 2), or in a maintenance
	// window. They stand apart from the sum above.
	Denied      uint64
	Maintenance uint64

	// The messages that ended within RecentWindow of the dispatcher's clock, and how many of
	// them ended in an error (an error answer or a dispatch error) or a timeout. A message is
	// counted when its outcome was decided: an overdue one when its limit passed.
	RecentEnded  uint64
	RecentFailed uint64
}

// Errors counts every message that ended in an error: error answers and dispatch errors.
func (s ServiceStats) Errors() uint64 { return s.ErrorAnswers + s.DispatchErrors }

// RecentErrorRate is RecentFailed / RecentEnded; zero when nothing ended recently.
func (s ServiceStats) RecentErrorRate() float64 {
	if s.RecentEnded == 0 {
		return 0
	}
	return float64(s.RecentFailed) / float64(s.RecentEnded)
}

// ending is how one service message ended.
type ending int

const (
	endAnswered ending = iota
	endNoData
	endErrorAnswer
	endDispatchError
	endTimeout
)

// slot counts the endings of one recentSlot of time.
type slot struct {
	index         int64 // the slot's number: clock seconds / recentSlot
	ended, failed uint64
}

// counter is one service's ServiceStats as the dispatcher keeps it.
type counter struct {
	stats  ServiceStats // without the recent counts
	recent [recentSlots]slot
	hist   *history // the charts' history (history.go); nil until the service is counted
}

// serviceCounters holds every service's counter. Its methods are safe for concurrent use.
type serviceCounters struct {
	mu    sync.Mutex
	svc   map[int]*counter
	total *history // every service's history together; nil until the first count
}

func slotIndex(at time.Time) int64 { return at.Unix() / int64(recentSlot/time.Second) }

func (c *serviceCounters) get(service int) *counter {
	if c.svc == nil {
		c.svc = make(map[int]*counter)
	}
	n := c.svc[service]
	if n == nil {
		n = &counter{}
		c.svc[service] = n
	}
	return n
}

func (c *serviceCounters) begin(service int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(service)
	n.stats.Dispatched++
	n.stats.InFlight++
	c.record(service, histRequest, at)
}

func (c *serviceCounters) end(service int, how ending, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(service)
	n.stats.InFlight--
	failed := true
	switch how {
	case endAnswered:
		n.stats.Answered++
		failed = false
		c.record(service, histAnswered, at)
	case endNoData:
		n.stats.Answered++
		n.stats.NoData++
		failed = false
		c.record(service, histAnswered, at)
	case endErrorAnswer:
		n.stats.Answered++
		n.stats.ErrorAnswers++
		c.record(service, histAnswered, at)
		c.record(service, histError, at)
	case endDispatchError:
		n.stats.DispatchErrors++
		c.record(service, histError, at)
	case endTimeout:
		n.stats.Timeouts++
		c.record(service, histTimeout, at)
	}
	n.recentEnd(at, failed)
}

// recentEnd counts an ending at at in the recent slots; the caller holds c.mu.
func (n *counter) recentEnd(at time.Time, failed bool) {
	idx := slotIndex(at)
	s := &n.recent[idx%recentSlots]
	if s.index != idx {
		*s = slot{index: idx}
	}
	s.ended++
	if failed {
		s.failed++
	}
}

// overdue counts a message whose time limit passed at at while its answer is still waited for:
// a timeout from now on, and overdue until settle.
func (c *serviceCounters) overdue(service int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(service)
	n.stats.InFlight--
	n.stats.Timeouts++
	n.stats.Overdue++
	n.recentEnd(at, true)
	c.record(service, histTimeout, at)
}

// settle ends the wait for an overdue message: answered tells whether its answer came (late).
func (c *serviceCounters) settle(service int, answered bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(service)
	n.stats.Overdue--
	if answered {
		n.stats.LateAnswers++
	}
}

// late counts a late answer of service.
func (c *serviceCounters) late(service int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.get(service).stats.LateAnswers++
}

// refused counts an answer of service refused as unauthenticated.
func (c *serviceCounters) refused(service int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.get(service).stats.RefusedAnswers++
}

// undispatched counts a result given without a message: denied, or maintenance.
func (c *serviceCounters) undispatched(service int, maintenance bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(service)
	if maintenance {
		n.stats.Maintenance++
		c.record(service, histMaintenance, at)
	} else {
		n.stats.Denied++
		c.record(service, histDenied, at)
	}
}

// snapshot returns every service's stats, the recent counts as of now.
func (c *serviceCounters) snapshot(now time.Time) map[int]ServiceStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := slotIndex(now)
	out := make(map[int]ServiceStats, len(c.svc))
	for service, n := range c.svc {
		s := n.stats
		for _, sl := range n.recent {
			if sl.index > cur-recentSlots && sl.index <= cur {
				s.RecentEnded += sl.ended
				s.RecentFailed += sl.failed
			}
		}
		out[service] = s
	}
	return out
}

// inFlight returns the services with messages in flight, and how many each has.
func (c *serviceCounters) inFlight() map[int]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int)
	for service, n := range c.svc {
		if n.stats.InFlight > 0 {
			out[service] = n.stats.InFlight
		}
	}
	return out
}
