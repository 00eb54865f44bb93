//go:build !race

package cli

// raceDetector: the race detector is off (see race_test.go).
const raceDetector = false
