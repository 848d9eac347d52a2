//go:build race

package index

// raceDetector: the tests run under the race detector.
const raceDetector = true
