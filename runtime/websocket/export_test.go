package websocket

import (
	"testing"
	"time"
)

// MaxIdleWorkers is how many idle workers a Poller may keep, for tests
// that count goroutines.
const MaxIdleWorkers = maxIdleWorkers

// QueueTogether marks the polled connections cs as running, so that input
// arriving for them no longer queues them, and returns a function that
// puts them on their poller's run queue as one batch, in this order: a
// test arranges which connections a worker finds queued behind which.
func QueueTogether(t testing.TB, cs ...*Conn) (queue func()) {
	t.Helper()
	es := make([]*pollEntry, len(cs))
	deadline := time.Now().Add(5 * time.Second)
	for i, c := range cs {
		e := c.poll.Load()
		if e == nil || !e.polled {
			t.Fatal("QueueTogether: connection is not polled")
		}
		// Idle once Serve's first run has drained the socket.
		for !e.state.CompareAndSwap(entryIdle, entryRunning) {
			if time.Now().After(deadline) {
				t.Fatal("QueueTogether: connection never idle")
			}
			time.Sleep(time.Millisecond)
		}
		es[i] = e
	}
	return func() { es[0].p.enqueue(es...) }
}

// Polled reports whether c is served by a Poller's epoll set rather than
// by a goroutine of its own: a test of the poller's read path checks that
// it is taking it.
func Polled(c *Conn) bool {
	e := c.poll.Load()
	return e != nil && e.polled
}

// WriterFragment is the payload of each fragment but the last that a
// Writer sends: a test of exact wire figures adds up their headers.
const WriterFragment = largeBufSize

// FrameLockHeld reports whether a write holds c's frame lock: a test
// waits for it to know that a write it started has the socket, and that
// whatever it does next queues behind that write.
func FrameLockHeld(c *Conn) bool {
	if c.frameMu.TryLock() {
		c.frameMu.Unlock()
		return false
	}
	return true
}
