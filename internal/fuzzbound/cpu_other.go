//go:build !unix

package fuzzbound

import "time"

var start = time.Now()

// processCPU falls back to wall time where getrusage is not available: a looser bound, never a
// tighter one.
func processCPU() time.Duration { return time.Since(start) }
