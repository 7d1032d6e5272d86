//go:build race

package wsrpc_test

// raceDetector: the race detector is on. Its goroutines need larger
// stacks, so stack sizes measured under it say nothing of a normal build.
const raceDetector = true
