package routing

import (
	"sync"

	"github.com/sio-pso/siobroker/schemas"
)

// answeredCache remembers the last answers an adapter process gave, by request and service, so
// that a redelivered request is answered without asking the source again. It is bounded: the
// oldest answer is forgotten first. Redeliveries come soon after the first delivery (a lost ack,
// a crashed peer), so a window of recent answers covers them; a copy delivered to another process
// is asked again there, and the broker keeps only the first answer it receives.
type answeredCache struct {
	mu    sync.Mutex
	max   int
	byKey map[string]schemas.ServiceResponse
	order []string // keys, oldest first
}

func newAnsweredCache(max int) *answeredCache {
	return &answeredCache{max: max, byKey: make(map[string]schemas.ServiceResponse, max)}
}

func (c *answeredCache) get(key string) (schemas.ServiceResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.byKey[key]
	return r, ok
}

func (c *answeredCache) put(key string, r schemas.ServiceResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	c.byKey[key] = r
	c.order = append(c.order, key)
}
