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
// Timeouts + InFlight.
type ServiceStats struct {
	Dispatched     uint64 // messages the dispatcher set out to send
	Answered       uint64 // answers that came in time, whatever their status
	ErrorAnswers   uint64 // of those, the answers with status error
	DispatchErrors uint64 // messages that could not be sent, or whose answer could not be read
	Timeouts       uint64 // no answer in time, or the request was cancelled first
	InFlight       int    // sent, and their answer is awaited now
	// LateAnswers counts the answers that came after their wait had ended (the message was
	// counted a timeout then), and any of a message this process did not send. They stand apart
	// from the sum above.
	LateAnswers uint64

	// The messages that ended within RecentWindow of the dispatcher's clock, and how many of
	// them ended in an error (an error answer or a dispatch error) or a timeout.
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
}

// serviceCounters holds every service's counter. Its methods are safe for concurrent use.
type serviceCounters struct {
	mu  sync.Mutex
	svc map[int]*counter
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

func (c *serviceCounters) begin(service int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.get(service)
	n.stats.Dispatched++
	n.stats.InFlight++
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
	case endErrorAnswer:
		n.stats.Answered++
		n.stats.ErrorAnswers++
	case endDispatchError:
		n.stats.DispatchErrors++
	case endTimeout:
		n.stats.Timeouts++
	}
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

// late counts a late answer of service.
func (c *serviceCounters) late(service int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.get(service).stats.LateAnswers++
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
