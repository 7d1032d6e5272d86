package websocket

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// afterCloseConn returns a server Conn over one end of a net.Pipe, made
// inside the caller's synctest bubble, with nothing reading it.
func afterCloseConn(t *testing.T) *Conn {
	t.Helper()
	local, peer := net.Pipe()
	c := newConn(local, false, resolveConfig(0, 0, 0, 0, 0, 0, false), "", nil, nil)
	t.Cleanup(func() { c.CloseNow(); peer.Close() })
	return c
}

// afterCloseList returns the connection's registrations, head first, as
// runAfterClose would take them now.
func afterCloseList(c *Conn) []*afterClose {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	var l []*afterClose
	for a := c.afterClose; a != nil; a = a.next {
		l = append(l, a)
	}
	return l
}

// TestAfterCloseStoppedNeverRuns checks without guessing how long to wait
// that a stopped registration leaves the connection's list and that its
// callback never runs. runAfterClose starts the callbacks with go before
// CloseNow returns, and synctest.Wait returns once every goroutine of the
// bubble is blocked or done: by then each callback that was started at
// all has run to its end.
func TestAfterCloseStoppedNeverRuns(t *testing.T) {
	t.Run("stop some", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := afterCloseConn(t)
			var started atomic.Int32
			var ran [3]atomic.Bool
			stops := make([]func() bool, 3)
			for i := range stops {
				stops[i] = c.AfterClose(func(error) { started.Add(1); ran[i].Store(true) })
			}
			// The list's head (the last registered), then its tail.
			if !stops[2]() || !stops[0]() {
				t.Fatal("stop before the close = false")
			}
			if stops[2]() {
				t.Error("a second stop = true")
			}
			if l := afterCloseList(c); len(l) != 1 || l[0].prev != nil || !l[0].linked {
				t.Fatalf("list after two of three stops: %d registrations, want the one left, unlinked from the others", len(l))
			}
			c.CloseNow()
			if l := afterCloseList(c); len(l) != 0 {
				t.Errorf("list after the close: %d registrations, want none", len(l))
			}
			synctest.Wait()
			if n := started.Load(); n != 1 || !ran[1].Load() {
				t.Errorf("callbacks run: %d (left registered: %v), want only the one left registered", n, ran[1].Load())
			}
			if ran[0].Load() || ran[2].Load() {
				t.Errorf("stopped callbacks ran: %v %v", ran[0].Load(), ran[2].Load())
			}
			if stops[1]() {
				t.Error("stop after the callback started = true")
			}
		})
	})
	t.Run("stop all", func(t *testing.T) {
		// Once the last registration is stopped the connection holds none;
		// registering again after that works as at first.
		synctest.Test(t, func(t *testing.T) {
			c := afterCloseConn(t)
			var started atomic.Int32
			stoppedRan := make(chan struct{}, 3)
			for range 3 {
				if stop := c.AfterClose(func(error) { started.Add(1); stoppedRan <- struct{}{} }); !stop() {
					t.Fatal("stop before the close = false")
				}
			}
			c.closeMu.Lock()
			head := c.afterClose
			c.closeMu.Unlock()
			if head != nil {
				t.Fatal("registrations left after every one was stopped")
			}
			live := make(chan error, 2) // room for a second run, so that one is reported, not a deadlock
			c.AfterClose(func(err error) { started.Add(1); live <- err })
			c.CloseNow()
			synctest.Wait()
			if len(live) != 1 {
				t.Error("the callback registered after the stops did not run")
			}
			if len(stoppedRan) != 0 {
				t.Errorf("%d stopped callbacks ran", len(stoppedRan))
			}
			if n := started.Load(); n != 1 {
				t.Errorf("%d callbacks ran, want 1", n)
			}
		})
	})
	t.Run("stop racing the close", func(t *testing.T) {
		// Each callback runs if and only if its stop reported false.
		synctest.Test(t, func(t *testing.T) {
			c := afterCloseConn(t)
			const n = 64
			var ran [n]atomic.Bool
			stops := make([]func() bool, n)
			for i := range stops {
				stops[i] = c.AfterClose(func(error) { ran[i].Store(true) })
			}
			var stopped [n]bool
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range stops {
				wg.Go(func() { <-start; stopped[i] = stops[i]() })
			}
			wg.Go(func() { <-start; c.CloseNow() })
			close(start)
			wg.Wait()
			synctest.Wait()
			for i := range ran {
				if ran[i].Load() == stopped[i] {
					t.Errorf("callback %d: ran %v, stop reported %v", i, ran[i].Load(), stopped[i])
				}
			}
		})
	})
}
