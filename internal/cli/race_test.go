//go:build race

package cli

// raceDetector: the race detector is on. It makes every goroutine's work several times costlier,
// the test's own clients' included, so that a bound on relative latency measures it instead of
// the broker.
const raceDetector = true
