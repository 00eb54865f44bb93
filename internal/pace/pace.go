// Package pace keeps a background job of the broker to a share of the time, so that it does its
// work in short steps with rests between them instead of one burst.
//
// Why: the journal's sealing and the request index's catch-up each read, hash, encode and write
// thousands of records at once every few seconds or minutes; on the embedded default's two cores
// such a burst took a core from the requests for up to a second, and every request in flight then
// waited (the half-rate load's p99 was 75–190 ms with them and 36 ms without, issue 20). Paced,
// the same work is done, later and spread out.
package pace

import (
	"context"
	"fmt"
	"time"
)

// Pacer times the steps of one run of a job and rests after each. A nil *Pacer never rests. It
// is not safe for concurrent use: a run is one goroutine's loop.
type Pacer struct {
	share float64
	since time.Time // when the step being timed began
}

// Check reports what is wrong with share as a job's setting of its share of the time: 0 (it never
// rests) to 1.
func Check(share float64) error {
	if !(share >= 0 && share <= 1) {
		return fmt.Errorf("a share of the time must be 0 to 1, got %g", share)
	}
	return nil
}

// New returns a Pacer whose job works at most share of the wall time (0 < share ≤ 1; 1 never
// rests), timing its first step from now.
func New(share float64) (*Pacer, error) {
	if !(share > 0 && share <= 1) {
		return nil, fmt.Errorf("pace: a share of the time must be in (0, 1], got %g", share)
	}
	return &Pacer{share: share, since: time.Now()}, nil
}

// Begin times the step from now: for a step that first waited (for a lock another holds, say)
// rather than worked, so that the wait is not rested for as if it were work.
func (p *Pacer) Begin() {
	if p != nil {
		p.since = time.Now()
	}
}

// Rest ends a step: it waits as long as the step took × (1 − share) ÷ share, so that the work
// took share of the time from the step's start to the rest's end, and then times the next step
// from its return. The step is timed by the clock on the wall, not the CPU: a step slowed by
// requests competing for the cores rests the longer, which is the point. It returns ctx's error
// when ctx ends first.
func (p *Pacer) Rest(ctx context.Context) error {
	if p == nil || p.share >= 1 {
		return ctx.Err()
	}
	worked := time.Since(p.since)
	t := time.NewTimer(time.Duration(float64(worked) * (1 - p.share) / p.share))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	p.since = time.Now()
	return nil
}
