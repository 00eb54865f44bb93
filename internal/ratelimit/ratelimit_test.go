package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

func TestRateAndBurstPerKey(t *testing.T) {
	l, err := New(Limits{Rate: 2, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, r := l.Acquire("a", t0); r != nil {
			t.Fatalf("request %d of the burst refused: %+v", i, r)
		}
	}
	_, r := l.Acquire("a", t0)
	if r == nil || r.Scope != ScopeRate || r.RetryAfter != 500*time.Millisecond {
		t.Fatalf("the request past the burst: %+v, want refused for rate, retry after 500ms", r)
	}
	if _, r := l.Acquire("b", t0); r != nil {
		t.Fatalf("another key refused: %+v", r)
	}
	if _, r := l.Acquire("a", t0.Add(500*time.Millisecond)); r != nil {
		t.Fatalf("a token earned in 500ms at 2/s was refused: %+v", r)
	}
	if _, r := l.Acquire("a", t0.Add(500*time.Millisecond)); r == nil {
		t.Fatal("a second request with no token left was taken")
	}
	if _, r := l.Acquire("a", t0.Add(-time.Hour)); r == nil {
		t.Fatal("a clock gone back earned tokens")
	}
}

func TestConcurrentPerKey(t *testing.T) {
	l, err := New(Limits{Concurrent: 2})
	if err != nil {
		t.Fatal(err)
	}
	rel1, _ := l.Acquire("a", t0)
	_, r := l.Acquire("a", t0)
	if r != nil {
		t.Fatalf("second in flight refused: %+v", r)
	}
	if _, r := l.Acquire("a", t0); r == nil || r.Scope != ScopeConcurrent {
		t.Fatalf("third in flight: %+v, want refused for concurrency", r)
	}
	if _, r := l.Acquire("b", t0); r != nil {
		t.Fatalf("another key refused: %+v", r)
	}
	rel1()
	rel1() // a second release is harmless
	if _, r := l.Acquire("a", t0); r != nil {
		t.Fatalf("after a release: %+v", r)
	}
	if _, r := l.Acquire("a", t0); r == nil {
		t.Fatal("a double release freed two slots")
	}
}

func TestNoLimitsAndInvalid(t *testing.T) {
	l, err := New(Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for range 10000 {
		if _, r := l.Acquire("a", t0); r != nil {
			t.Fatal("no limits refused")
		}
	}
	var nilLimiter *Limiter
	if _, r := nilLimiter.Acquire("a", t0); r != nil {
		t.Fatal("a nil limiter refused")
	}
	for _, bad := range []Limits{{Rate: -1}, {Burst: -1}, {Concurrent: -1}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

// TestIdleKeysForgotten: many addresses, once each, do not stay in memory once their buckets are
// full again (within Burst/Rate of their last request).
func TestIdleKeysForgotten(t *testing.T) {
	l, err := New(Limits{Rate: 10, Burst: 10, Concurrent: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		rel, _ := l.Acquire(fmt.Sprint("k", i), t0)
		rel()
	}
	held, _ := l.Acquire("held", t0) // in flight: never forgotten
	later := t0.Add(time.Minute)
	for i := range 3000 {
		rel, _ := l.Acquire(fmt.Sprint("m", i), later)
		rel()
	}
	if n := l.Len(); n > 3001 {
		t.Fatalf("%d keys held a minute later, want the first 5,000 forgotten (at most 3,001)", n)
	}
	if _, r := l.Acquire("held", later); r != nil {
		t.Fatalf("the key in flight: %+v", r)
	}
	held()
}
