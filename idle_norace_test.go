//go:build !race

package wsrpc_test

// raceDetector: the race detector is on (see idle_race_test.go).
const raceDetector = false
