package pace

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRestKeepsTheShare: a step that worked w rests w × (1 − share) ÷ share, so a job of steps
// spends no more than its share of the wall time working; a nil Pacer and a share of 1 never rest.
func TestRestKeepsTheShare(t *testing.T) {
	ctx := context.Background()
	p, err := New(0.25)
	if err != nil {
		t.Fatal(err)
	}
	const step = 20 * time.Millisecond
	start := time.Now()
	for range 3 {
		time.Sleep(step) // the step's work
		if err := p.Rest(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Three steps of at least 20 ms each rest at least 60 ms each: 240 ms at least in all.
	if took := time.Since(start); took < 12*step {
		t.Errorf("three 20 ms steps at a share of 0.25 took %s, want at least %s", took, 12*step)
	}

	for _, idle := range []*Pacer{nil, {share: 1, since: time.Now()}} {
		time.Sleep(step)
		start := time.Now()
		if err := idle.Rest(ctx); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > step {
			t.Errorf("a Pacer that should not rest (%v) rested %s", idle, took)
		}
	}
}

// TestBeginLeavesOutAWait: a step timed from Begin rests for what it worked after it, not for
// the wait before; a nil Pacer's Begin does nothing.
func TestBeginLeavesOutAWait(t *testing.T) {
	p, err := New(0.01)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a wait that, counted as work, would rest about 10 s
	p.Begin()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Rest(ctx); err != nil {
		t.Errorf("Rest = %v: the wait before Begin was rested for", err)
	}
	var none *Pacer
	none.Begin()
}

// TestRestEndsWithItsContext: a rest is cut short by its context, whose error it returns.
func TestRestEndsWithItsContext(t *testing.T) {
	p, err := New(0.01)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a step that rests about 10 s
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Rest(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Rest = %v, want the context's deadline", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the rest went on %s after its context ended", took)
	}
}

// TestNewRefusesShares: a share must be a fraction of the time, above 0.
func TestNewRefusesShares(t *testing.T) {
	for _, share := range []float64{0, -0.5, 1.5} {
		if _, err := New(share); err == nil {
			t.Errorf("New(%g) was taken", share)
		}
	}
}

// TestCheckTakesZeroToOne: a job's share may be 0 (it never rests) to 1, nothing else.
func TestCheckTakesZeroToOne(t *testing.T) {
	for _, share := range []float64{0, 0.25, 1} {
		if err := Check(share); err != nil {
			t.Errorf("Check(%g): %v", share, err)
		}
	}
	for _, share := range []float64{-0.1, 1.5} {
		if err := Check(share); err == nil {
			t.Errorf("Check(%g) took it", share)
		}
	}
}
