// Package fuzzbound holds one fuzz input to a stated bound on what it costs, and writes seed
// corpora in Go's format. The fuzz targets of the untrusted-input path (issue 16: the envelope
// reader, canonicalisation, the signature verifier, the query parser) use it, so that a bound
// violation is a failure the fuzzer records and minimises like a panic.
//
// The costs are counted where they can be (allocations and bytes allocated, from the runtime's
// own counters) and timed only as a backstop: the CPU time of the process, not wall time, so that
// a loaded machine does not make the bound flaky; and a watchdog for a true hang, which no bound
// checked after the call can catch.
package fuzzbound

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Cost is what one call cost.
type Cost struct {
	CPU    time.Duration // user and system CPU time of the whole process, GC included
	Allocs uint64        // heap allocations
	Bytes  uint64        // bytes allocated on the heap
}

// Measure runs f and returns what it cost. runtime.ReadMemStats stops the world, so the counts
// are exact for f alone as long as nothing else runs meanwhile: a fuzz worker runs one input at
// a time, and seeds run one after another.
func Measure(f func()) Cost {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU()
	f()
	cpu1 := processCPU()
	runtime.ReadMemStats(&after)
	return Cost{
		CPU:    cpu1 - cpu0,
		Allocs: after.Mallocs - before.Mallocs,
		Bytes:  after.TotalAlloc - before.TotalAlloc,
	}
}

// Bound is a cost linear in the size of the input: a base plus so much per KiB (per byte for
// bytes allocated). Zero fields bound nothing. The CPU bound is for a build without the race
// detector, and is multiplied by RaceCPUFactor with it.
type Bound struct {
	CPUBase, CPUPerKB       time.Duration
	AllocsBase, AllocsPerKB uint64
	BytesBase, BytesPerByte uint64
}

// Check fails t when c, the cost of an input of size bytes, exceeds b.
func (b Bound) Check(t testing.TB, size int, c Cost) {
	t.Helper()
	kb := float64(size) / 1024
	if b.CPUBase > 0 || b.CPUPerKB > 0 {
		limit := b.CPUBase + time.Duration(kb*float64(b.CPUPerKB))
		if raceEnabled {
			limit *= RaceCPUFactor
		}
		if c.CPU > limit {
			t.Errorf("an input of %d bytes cost %v of CPU, over the bound of %v (%v + %v per KiB, race detector %v)", size, c.CPU, limit, b.CPUBase, b.CPUPerKB, raceEnabled)
		}
	}
	if b.AllocsBase > 0 || b.AllocsPerKB > 0 {
		if limit := b.AllocsBase + uint64(kb*float64(b.AllocsPerKB)); c.Allocs > limit {
			t.Errorf("an input of %d bytes made %d allocations, over the bound of %d (%d + %d per KiB)", size, c.Allocs, limit, b.AllocsBase, b.AllocsPerKB)
		}
	}
	if b.BytesBase > 0 || b.BytesPerByte > 0 {
		if limit := b.BytesBase + uint64(size)*b.BytesPerByte; c.Bytes > limit {
			t.Errorf("an input of %d bytes allocated %d bytes, over the bound of %d (%d + %d per byte)", size, c.Bytes, limit, b.BytesBase, b.BytesPerByte)
		}
	}
}

// Watchdog panics, on a goroutine of its own, if the returned stop is not called within limit.
// A panic there kills the process: the fuzzer reports the input it was running as a crash and
// keeps it, and a plain test run fails with the stacks of every goroutine, the hung one among
// them. Nothing after the call could report a hang.
func Watchdog(limit time.Duration, what string) (stop func()) {
	timer := time.AfterFunc(limit, func() {
		panic(fmt.Sprintf("fuzzbound: %s still running after %v: a hang", what, limit))
	})
	return func() { timer.Stop() }
}

// RaceCPUFactor multiplies CPU bounds under the race detector, which was measured to cost up to
// 10 times the CPU of the reader's worst cases.
const RaceCPUFactor = 15
