package routing

import (
	"sync"

	"github.com/sio-pso/siobroker/schemas"
)

// boundedCache remembers the values put last, by key, and forgets the oldest first: redelivered
// copies come soon after the first delivery (a lost ack, a crashed peer), so a window of recent
// keys recognises them without the memory growing with the traffic. It is safe for concurrent use.
type boundedCache[V any] struct {
	mu    sync.Mutex
	byKey map[string]cacheEntry[V]
	ring  []ringSlot // the keys in the order they were put; next is overwritten first
	next  int
	gen   uint64 // counts puts, so that a slot never evicts a key put again after it
}

type cacheEntry[V any] struct {
	v   V
	gen uint64
}

type ringSlot struct {
	key string
	gen uint64 // 0: empty
}

func newBoundedCache[V any](size int) *boundedCache[V] {
	size = max(size, 1)
	return &boundedCache[V]{byKey: make(map[string]cacheEntry[V], size), ring: make([]ringSlot, size)}
}

func (c *boundedCache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	return e.v, ok
}

// put remembers v under key, unless key is remembered already: the first value is kept.
func (c *boundedCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return
	}
	old := c.ring[c.next]
	if e, ok := c.byKey[old.key]; ok && old.gen != 0 && e.gen == old.gen {
		delete(c.byKey, old.key)
	}
	c.gen++
	c.byKey[key] = cacheEntry[V]{v: v, gen: c.gen}
	c.ring[c.next] = ringSlot{key: key, gen: c.gen}
	c.next = (c.next + 1) % len(c.ring)
}

// forget drops key. Its slot stays until it is overwritten, so the cache may then hold fewer
// keys than its bound, never more.
func (c *boundedCache[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byKey, key)
}

// len returns how many keys are remembered.
func (c *boundedCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}

// answeredCache remembers the last answers an adapter process gave, by request and service, so
// that a redelivered request is answered without asking the source again. A copy delivered to
// another process is recognised there only through a shared Ledger; without one it is asked
// again, and the broker keeps only the first answer it receives.
type answeredCache = boundedCache[schemas.ServiceResponse]

func newAnsweredCache(size int) *answeredCache { return newBoundedCache[schemas.ServiceResponse](size) }
