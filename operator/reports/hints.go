package reports

import (
	"sync"
	"sync/atomic"

	"github.com/sio-pso/siobroker"
)

// QueryHints holds the queries of the requests this process journaled, read from the envelopes
// the broker had parsed (broker.Deps.IndexHint), until the index folds their records. Without
// them the index reads every journaled envelope again (soap.JournaledQuery, the XML decoder over
// the whole document): under load that was a fifth of everything the broker allocated and 4% of
// its CPU, to learn what the broker had known a moment before.
//
// A hint is taken once, by the request's id and the size of the record's Data, so that it is
// used only for the record it was made for. The hints are bounded by count and by bytes; when
// they are full the oldest goes, and the index reads that request from the journal as it always
// could. A process that journals nothing (journal reindex) has no hints: the journal alone is
// the index's source, and the hints never say anything it would not.
//
// It is safe for concurrent use; a nil *QueryHints holds nothing.
type QueryHints struct {
	maxCount int
	maxBytes int

	mu    sync.Mutex
	byID  map[string]queryHint
	order []string // the ids in the order they came, a ring of maxCount; one taken stays until its turn
	head  int      // order's oldest
	count int      // the ids in order
	bytes int      // what the hints in byID hold, as hintBytes counts it

	taken, missed atomic.Uint64
}

type queryHint struct {
	size  int // len of the journal record's Data
	query siobroker.Query
	bytes int
}

// Default bounds of NewQueryHints: at 400 requests a second, forty seconds' backlog of the paced
// catch-up (issue 20 measured a few seconds of it); a hint is a few hundred bytes.
const (
	DefaultHintCount = 16384
	DefaultHintBytes = 8 << 20
)

// NewQueryHints returns empty hints of at most maxCount entries and maxBytes bytes; zero or less
// takes DefaultHintCount, DefaultHintBytes.
func NewQueryHints(maxCount, maxBytes int) *QueryHints {
	if maxCount <= 0 {
		maxCount = DefaultHintCount
	}
	if maxBytes <= 0 {
		maxBytes = DefaultHintBytes
	}
	return &QueryHints{maxCount: maxCount, maxBytes: maxBytes, byID: map[string]queryHint{}, order: make([]string, maxCount)}
}

// Hint keeps q as the query of the request requestID, whose journal record's Data is size bytes.
func (h *QueryHints) Hint(requestID string, size int, q siobroker.Query) {
	if h == nil {
		return
	}
	hint := queryHint{size: size, query: q, bytes: hintBytes(requestID, q)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.forget(requestID) {
		if h.count == h.maxCount {
			h.forget(h.pop())
		}
		h.order[(h.head+h.count)%h.maxCount] = requestID
		h.count++
	}
	h.byID[requestID] = hint
	h.bytes += hint.bytes
	for h.bytes > h.maxBytes && h.count > 0 {
		h.forget(h.pop())
	}
}

// pop takes the oldest id out of the ring.
func (h *QueryHints) pop() string {
	id := h.order[h.head]
	h.order[h.head] = ""
	h.head = (h.head + 1) % h.maxCount
	h.count--
	return id
}

// forget drops the hint of id, if held, and reports whether it was.
func (h *QueryHints) forget(id string) bool {
	old, ok := h.byID[id]
	if ok {
		delete(h.byID, id)
		h.bytes -= old.bytes
	}
	return ok
}

// take returns and forgets the hint of the request requestID whose record's Data is size bytes.
func (h *QueryHints) take(requestID string, size int) (siobroker.Query, bool) {
	if h == nil {
		return siobroker.Query{}, false
	}
	h.mu.Lock()
	hint, ok := h.byID[requestID]
	if ok {
		h.forget(requestID)
	}
	h.mu.Unlock()
	if !ok || hint.size != size {
		h.missed.Add(1)
		return siobroker.Query{}, false
	}
	h.taken.Add(1)
	return hint.query, true
}

// Taken and Missed count the journaled requests the index folded from a hint, and those it read
// from the journal instead (no hint held, or one for other bytes).
func (h *QueryHints) Taken() uint64 { return h.taken.Load() }

// Missed: see Taken.
func (h *QueryHints) Missed() uint64 { return h.missed.Load() }

// Len returns the count of the hints held and the bytes they hold.
func (h *QueryHints) Len() (count, bytes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byID), h.bytes
}

// hintBytes is what a hint holds: its strings and slices, and the map entry and struct around
// them (an estimate, for the bound).
func hintBytes(id string, q siobroker.Query) int {
	n := 256 + len(id) + len(q.Article) + len(q.Purpose) + len(q.Subject.IIN) + len(q.Subject.BIN) + 8*len(q.Services)
	c := q.Case
	n += len(c.Number) + len(c.InstructionNo) + len(c.RequestingBody) + len(c.CoveringLetterNo) + len(c.Year) + len(c.Court)
	for _, a := range q.CaseArticles {
		n += 16 + len(a)
	}
	return n
}
