package routing

import (
	"sync"

	"github.com/sio-pso/siobroker/schemas"
)

// boundedCache remembers the values put last, by key, and forgets the oldest first: redelivered
// copies come soon after the first delivery (a lost ack, a crashed peer), so a window of recent
// keys recognises them without the memory growing with the traffic. It is bounded by entries and,
// where its values vary in size (sizeOf), by their bytes too. It is safe for concurrent use.
type boundedCache[V any] struct {
	mu    sync.Mutex
	byKey map[string]cacheEntry[V]
	ring  []ringSlot // the keys in the order they were put; next is overwritten first
	next  int
	gen   uint64 // counts puts, so that a slot never evicts a key put again after it
	// sizeOf, when set, is what an entry costs in bytes; the entries' sum stays within maxBytes
	// (bytes), the oldest forgotten first, and a value larger than maxBytes is not remembered.
	sizeOf   func(key string, v V) int
	maxBytes int
	bytes    int
}

type cacheEntry[V any] struct {
	v    V
	gen  uint64
	cost int // sizeOf's, 0 without it
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
	cost := 0
	if c.sizeOf != nil {
		if cost = c.sizeOf(key, v); cost > c.maxBytes {
			return // it would push out everything else, and still not fit
		}
		// Forget the oldest until it fits: the ring from next on is oldest first.
		for i := 0; c.bytes+cost > c.maxBytes && i < len(c.ring); i++ {
			c.evict((c.next + i) % len(c.ring))
		}
	}
	c.evict(c.next)
	c.gen++
	c.byKey[key] = cacheEntry[V]{v: v, gen: c.gen, cost: cost}
	c.bytes += cost
	c.ring[c.next] = ringSlot{key: key, gen: c.gen}
	c.next = (c.next + 1) % len(c.ring)
}

// evict forgets the entry of slot i, if it is still the one the slot was put for, and empties
// the slot.
func (c *boundedCache[V]) evict(i int) {
	old := c.ring[i]
	if e, ok := c.byKey[old.key]; ok && old.gen != 0 && e.gen == old.gen {
		delete(c.byKey, old.key)
		c.bytes -= e.cost
	}
	c.ring[i] = ringSlot{}
}

// forget drops key. Its slot stays until it is overwritten, so the cache may then hold fewer
// keys than its bound, never more.
func (c *boundedCache[V]) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.bytes -= e.cost
		delete(c.byKey, key)
	}
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

// answeredCacheBytes bounds the answers an adapter process remembers by their size: a source's
// answer may run to many records, and 10,000 large ones would otherwise be gigabytes.
const answeredCacheBytes = 64 << 20

// newAnsweredCache remembers up to size answers of at most maxBytes in all.
func newAnsweredCache(size, maxBytes int) *answeredCache {
	c := newBoundedCache[schemas.ServiceResponse](size)
	c.sizeOf, c.maxBytes = answerSize, maxBytes
	return c
}

// answerSize is about what an answer holds in memory: its strings and a word or two for each
// record and field (the slices' headers).
func answerSize(key string, resp schemas.ServiceResponse) int {
	n := len(key) + len(resp.RequestID) + len(resp.Adapter) + len(resp.Result.Reason) + len(resp.Result.Message) + 128
	for _, r := range resp.Result.Records {
		n += len(r.Type) + 40
		for _, f := range r.Fields {
			n += len(f.Name) + len(f.Value) + 32
		}
	}
	return n
}
