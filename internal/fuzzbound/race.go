//go:build race

package fuzzbound

// raceEnabled: the race detector costs 5 to 20 times the CPU, so CPU bounds are multiplied by
// RaceCPUFactor.
const raceEnabled = true
