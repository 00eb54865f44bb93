package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sio-pso/siobroker"
	"github.com/sio-pso/siobroker/routing"
	"github.com/sio-pso/siobroker/schemas"
)

// DispatchStats is what the Monitor reads of the dispatcher (*routing.Dispatcher).
type DispatchStats interface {
	Stats() map[int]routing.ServiceStats
}

// DelayTracker is what the Monitor reads of the delivery tracker (*incidents.Tracker).
type DelayTracker interface {
	Oldest() map[siobroker.IncidentCause]time.Duration
}

// QueueReader reads the transport's queues (*amqp.Transport). Both reads go to the message
// server, so the Monitor caches them.
type QueueReader interface {
	// QueueDepths returns the messages ready in each named queue; a queue it cannot find is left out.
	QueueDepths(ctx context.Context, queues []string) (map[string]int64, error)
	// DeadLettersByService returns the number of dead letters per service.
	DeadLettersByService(ctx context.Context) (map[int]int64, error)
}

// Defaults of MonitorConfig.
const (
	DefaultDepthTTL      = 5 * time.Second
	DefaultDeadLetterTTL = 15 * time.Second
	DefaultReadTimeout   = 5 * time.Second
)

// MonitorConfig says where a Monitor reads. Dispatcher, Delays and Clock are required; zero
// durations take the defaults, negative ones are refused.
type MonitorConfig struct {
	Dispatcher DispatchStats
	Delays     DelayTracker
	// Queues reads queue depths and dead letters; nil when the transport cannot tell (the
	// in-process GoChannel): QueueDepth and DeadLetters are then -1.
	Queues QueueReader
	// QueueName is the queue (topic) of a service; default schemas.ServiceTopic.
	QueueName func(service int) string
	Clock     siobroker.Clock
	// How long a read of the queue depths and of the dead letters is reused (on Clock), so that
	// a storm of scrapes cannot hammer the message server; defaults DefaultDepthTTL and
	// DefaultDeadLetterTTL. A failed read is reused as long.
	DepthTTL, DeadLetterTTL time.Duration
	// ReadTimeout bounds each read of the message server; default DefaultReadTimeout.
	ReadTimeout time.Duration
}

// Monitor produces the snapshot of every service's state. It is safe for concurrent use, and
// Services is cheap: the dispatcher and the tracker are read in memory, and the message server at
// most once per TTL, whoever asks.
type Monitor struct {
	cfg MonitorConfig

	refresh sync.Mutex // held by the one caller reading the message server
	mu      sync.Mutex // guards the cached reads
	depths  cachedRead[map[string]int64]
	dead    cachedRead[map[int]int64]
}

// cachedRead is a read of the message server and when it was made (done: it was).
type cachedRead[T any] struct {
	done bool
	at   time.Time
	val  T
	err  error
}

func (c cachedRead[T]) fresh(now time.Time, ttl time.Duration) bool {
	return c.done && now.Sub(c.at) < ttl && !now.Before(c.at)
}

func (c *MonitorConfig) setDefaults() {
	if c.QueueName == nil {
		c.QueueName = schemas.ServiceTopic
	}
	if c.DepthTTL == 0 {
		c.DepthTTL = DefaultDepthTTL
	}
	if c.DeadLetterTTL == 0 {
		c.DeadLetterTTL = DefaultDeadLetterTTL
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
}

// Validate reports what is wrong with c once its defaults are applied: every required field
// that is missing, and every negative duration.
func (c MonitorConfig) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Dispatcher == nil {
		errs = append(errs, errors.New("health: MonitorConfig.Dispatcher is required"))
	}
	if c.Delays == nil {
		errs = append(errs, errors.New("health: MonitorConfig.Delays is required"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("health: MonitorConfig.Clock is required"))
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"DepthTTL", c.DepthTTL},
		{"DeadLetterTTL", c.DeadLetterTTL},
		{"ReadTimeout", c.ReadTimeout},
	} {
		if d.val < 0 {
			errs = append(errs, fmt.Errorf("health: MonitorConfig.%s must not be negative, got %s", d.name, d.val))
		}
	}
	return errors.Join(errs...)
}

// NewMonitor returns a Monitor. It applies the defaults of cfg and returns an error naming every
// field of cfg that is missing or invalid.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Monitor{cfg: cfg}, nil
}

// Services returns the state of every service of Appendix 2 (siobroker.FirstService to
// LastService), in order. It always returns all of them; the error says what could not be read
// from the message server, whose fields are then -1.
func (m *Monitor) Services(ctx context.Context) ([]ServiceState, error) {
	stats := m.cfg.Dispatcher.Stats()
	oldest := make(map[int]time.Duration)
	for cause, age := range m.cfg.Delays.Oldest() {
		if age > oldest[cause.Service] {
			oldest[cause.Service] = age
		}
	}
	names := make([]string, 0, siobroker.LastService-siobroker.FirstService+1)
	for n := siobroker.FirstService; n <= siobroker.LastService; n++ {
		names = append(names, m.cfg.QueueName(n))
	}
	depths, dead, err := m.transport(ctx, names)

	out := make([]ServiceState, 0, len(names))
	for i, n := 0, siobroker.FirstService; n <= siobroker.LastService; i, n = i+1, n+1 {
		s := stats[n]
		st := ServiceState{
			Service: n, Queue: names[i], QueueDepth: -1, DeadLetters: -1,
			InFlight: s.InFlight, OldestAge: oldest[n],
			Dispatched: s.Dispatched, Answered: s.Answered, NoData: s.NoData, Errors: s.Errors(), Timeouts: s.Timeouts,
			ErrorAnswers: s.ErrorAnswers, DispatchErrors: s.DispatchErrors, Overdue: s.Overdue, LateAnswers: s.LateAnswers,
			RefusedAnswers: s.RefusedAnswers, Denied: s.Denied, Maintenance: s.Maintenance,
			ErrorRate: s.RecentErrorRate(),
		}
		if depths != nil {
			if d, ok := depths[names[i]]; ok {
				st.QueueDepth = d
			}
		}
		if dead != nil {
			st.DeadLetters = dead[n]
		}
		out = append(out, st)
	}
	return out, err
}

// transport returns the queue depths and the dead letters, nil where the transport cannot tell
// or the read failed. It reads the message server only when the cached read is stale; while
// another caller is reading, it returns the stale read rather than wait (only the very first
// callers wait for the first read).
func (m *Monitor) transport(ctx context.Context, names []string) (map[string]int64, map[int]int64, error) {
	if m.cfg.Queues == nil {
		return nil, nil, nil
	}
	depths, dead := m.cached()
	now := m.cfg.Clock.Now()
	if !depths.fresh(now, m.cfg.DepthTTL) || !dead.fresh(now, m.cfg.DeadLetterTTL) {
		switch {
		case m.refresh.TryLock():
		case depths.done && dead.done:
			return depths.val, dead.val, errors.Join(depths.err, dead.err)
		default:
			m.refresh.Lock()
		}
		depths, dead = m.read(ctx, names)
		m.refresh.Unlock()
	}
	return depths.val, dead.val, errors.Join(depths.err, dead.err)
}

func (m *Monitor) cached() (cachedRead[map[string]int64], cachedRead[map[int]int64]) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.depths, m.dead
}

// read refreshes what is stale; the caller holds m.refresh.
func (m *Monitor) read(ctx context.Context, names []string) (cachedRead[map[string]int64], cachedRead[map[int]int64]) {
	depths, dead := m.cached() // another caller may have read meanwhile
	now := m.cfg.Clock.Now()
	if !depths.fresh(now, m.cfg.DepthTTL) {
		ctx, cancel := context.WithTimeout(ctx, m.cfg.ReadTimeout)
		val, err := m.cfg.Queues.QueueDepths(ctx, names)
		cancel()
		depths = cachedRead[map[string]int64]{at: now, val: val, done: true}
		if err != nil {
			depths = cachedRead[map[string]int64]{at: now, err: fmt.Errorf("queue depths: %w", err), done: true}
		}
	}
	if !dead.fresh(now, m.cfg.DeadLetterTTL) {
		ctx, cancel := context.WithTimeout(ctx, m.cfg.ReadTimeout)
		val, err := m.cfg.Queues.DeadLettersByService(ctx)
		cancel()
		dead = cachedRead[map[int]int64]{at: now, val: val, done: true}
		if err != nil {
			dead = cachedRead[map[int]int64]{at: now, err: fmt.Errorf("dead letters: %w", err), done: true}
		}
	}
	m.mu.Lock()
	m.depths, m.dead = depths, dead
	m.mu.Unlock()
	return depths, dead
}
