// Package ratelimit keeps, per key (a client address, a signer), a token bucket of requests and a
// count of requests in flight. Time is always passed in, so that tests decide it and no test
// waits on the wall clock.
package ratelimit

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Limits bound the requests of one key. A zero Rate or Concurrent is no limit of that kind.
type Limits struct {
	Rate       float64 // requests per second, sustained
	Burst      int     // requests at once above the rate; at least 1 when Rate is set (default: Rate rounded up)
	Concurrent int     // requests in flight at once
}

// Validate reports a negative or non-finite limit.
func (l Limits) Validate() error {
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Burst < 0 || l.Concurrent < 0 {
		return fmt.Errorf("ratelimit: limits must be finite and not negative, got rate %v, burst %d, concurrent %d",
			l.Rate, l.Burst, l.Concurrent)
	}
	return nil
}

// Scope says which limit refused a request.
type Scope string

// The limits that can refuse.
const (
	ScopeRate       Scope = "rate"
	ScopeConcurrent Scope = "concurrent"
)

// Refusal is why a request was refused, and when the client may retry.
type Refusal struct {
	Scope      Scope
	RetryAfter time.Duration
}

// Limiter holds the state of every key it has seen recently. It is safe for concurrent use.
type Limiter struct {
	lim       Limits
	mu        sync.Mutex
	keys      map[string]*state
	nextSweep int
	lastSweep time.Time
}

type state struct {
	tokens   float64
	last     time.Time
	inFlight int
}

// minSweep is the number of keys below which idle keys are not swept: a sweep walks every key.
// sweepEvery is how often they are swept anyway above it, so that the keys of a wave of
// addresses that has passed are forgotten before the map has doubled.
const (
	minSweep   = 1024
	sweepEvery = 10 * time.Second
)

// New returns a limiter of lim. It returns an error for invalid limits.
func New(lim Limits) (*Limiter, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	if lim.Rate > 0 && lim.Burst == 0 {
		lim.Burst = int(math.Ceil(lim.Rate))
	}
	return &Limiter{lim: lim, keys: map[string]*state{}, nextSweep: minSweep}, nil
}

// Limits are the limiter's limits, with the default burst applied.
func (l *Limiter) Limits() Limits { return l.lim }

// Acquire takes one request of key at now. It returns a release to call when the request ends
// (nil with a refusal). The concurrency limit is checked first, so that a request refused for it
// does not also spend a token.
func (l *Limiter) Acquire(key string, now time.Time) (release func(), refused *Refusal) {
	if l == nil || (l.lim.Rate == 0 && l.lim.Concurrent == 0) {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s == nil {
		l.sweep(now)
		s = &state{tokens: float64(l.lim.Burst), last: now}
		l.keys[key] = s
	}
	if l.lim.Concurrent > 0 && s.inFlight >= l.lim.Concurrent {
		// No telling when one ends: a second is a polite pause that does not strand the client.
		return nil, &Refusal{Scope: ScopeConcurrent, RetryAfter: time.Second}
	}
	if l.lim.Rate > 0 {
		l.refill(s, now)
		if s.tokens < 1 {
			wait := time.Duration((1 - s.tokens) / l.lim.Rate * float64(time.Second))
			return nil, &Refusal{Scope: ScopeRate, RetryAfter: wait}
		}
		s.tokens--
	}
	s.inFlight++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			s.inFlight--
			l.mu.Unlock()
		})
	}, nil
}

// refill adds the tokens earned since s.last, up to the burst. A clock that went back adds none.
func (l *Limiter) refill(s *state, now time.Time) {
	if el := now.Sub(s.last); el > 0 {
		s.tokens = min(float64(l.lim.Burst), s.tokens+el.Seconds()*l.lim.Rate)
		s.last = now
	}
}

// sweep forgets the keys that are idle (nothing in flight, a full bucket), whose state is the
// same as a new key's, so that many addresses cannot grow the map without bound. It runs when the
// map has doubled since the last sweep, so its cost per new key stays constant, or sweepEvery
// after the last. The caller holds l.mu.
func (l *Limiter) sweep(now time.Time) {
	if len(l.keys) < minSweep || (len(l.keys) < l.nextSweep && now.Sub(l.lastSweep) < sweepEvery) {
		return
	}
	l.lastSweep = now
	for k, s := range l.keys {
		if s.inFlight > 0 {
			continue
		}
		if l.lim.Rate > 0 {
			l.refill(s, now)
			if s.tokens < float64(l.lim.Burst) {
				continue
			}
		}
		delete(l.keys, k)
	}
	l.nextSweep = max(minSweep, 2*len(l.keys))
}

// Len is the number of keys held, for tests.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
