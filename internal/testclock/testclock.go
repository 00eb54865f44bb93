// Package testclock is the clock tests inject and move by hand (siobroker.Clock), so that an
// hour's delay, a 60-day inactivity or a certificate's expiry is tested in milliseconds. It is
// safe for concurrent use: the code under test reads it from its own goroutines.
package testclock

import (
	"sync"
	"time"
)

// Clock stands still until the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock showing t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the time the clock shows.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
