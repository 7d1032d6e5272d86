package websocket

// MaxIdleWorkers is how many idle workers a Poller may keep, for tests
// that count goroutines.
const MaxIdleWorkers = maxIdleWorkers
